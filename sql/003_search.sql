-- 003: officers and what they may see (row-level security), the audit log, and the indexer's bookkeeping.

-- Officers are PostgreSQL login roles granted mailvault_officer; this says which accounts each may see.
CREATE TABLE officers (
    role            name PRIMARY KEY,
    all_accounts    boolean NOT NULL DEFAULT false,
    added_by        name NOT NULL DEFAULT session_user,
    added_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE officer_accounts (
    role            name NOT NULL REFERENCES officers(role) ON DELETE CASCADE,
    account_id      integer NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (role, account_id)
);

-- True if the logged-in officer may see the account. SECURITY DEFINER so officers need no access to the
-- scope tables themselves; session_user (the login), not current_user, so SET ROLE cannot widen it.
CREATE FUNCTION mailvault_may_see(acct integer) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM officers o WHERE o.role = session_user
                   AND (o.all_accounts OR EXISTS (SELECT 1 FROM officer_accounts oa
                                                  WHERE oa.role = o.role AND oa.account_id = acct)))
$$;
REVOKE ALL ON FUNCTION mailvault_may_see(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_may_see(integer) TO mailvault_officer;

-- Row-level security: the programs see what their grants allow; an officer only rows of their accounts.
-- (The owner, who runs `mailvault init`, is not subject to it.)
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE folders ENABLE ROW LEVEL SECURITY;
ALTER TABLE locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_errors ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'folders', 'locations', 'messages', 'blobs', 'ingest_errors'] LOOP
        EXECUTE format('CREATE POLICY programs ON %I TO mailvault_ingest, mailvault_indexer, mailvault_retention '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;
CREATE POLICY officer_scope ON accounts FOR SELECT TO mailvault_officer USING (mailvault_may_see(id));
CREATE POLICY officer_scope ON folders FOR SELECT TO mailvault_officer USING (mailvault_may_see(account_id));
CREATE POLICY officer_scope ON ingest_errors FOR SELECT TO mailvault_officer USING (mailvault_may_see(account_id));
CREATE POLICY officer_scope ON locations FOR SELECT TO mailvault_officer
    USING (EXISTS (SELECT 1 FROM folders f WHERE f.id = folder_id));
CREATE POLICY officer_scope ON messages FOR SELECT TO mailvault_officer
    USING (EXISTS (SELECT 1 FROM locations l WHERE l.message_serial = serial));
CREATE POLICY officer_scope ON blobs FOR SELECT TO mailvault_officer
    USING (EXISTS (SELECT 1 FROM messages m WHERE m.sha256 = blobs.sha256));
GRANT SELECT ON accounts, folders, locations, messages, blobs, ingest_errors TO mailvault_officer;
-- what officers must not learn even about their own accounts
REVOKE SELECT ON accounts FROM mailvault_officer;
GRANT SELECT (id, name, host, username, enabled, last_success, last_error) ON accounts TO mailvault_officer;

-- The audit log: append-only and hash-chained. Each row's hash covers the previous row's hash and
-- the row's own canonical text, so any change or removal breaks the chain (`mailvault audit verify`).
CREATE TABLE audit_log (
    seq             bigint PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           name NOT NULL,
    action          text NOT NULL,
    target          text,
    details         jsonb NOT NULL DEFAULT '{}',
    prev_hash       bytea NOT NULL,
    hash            bytea NOT NULL UNIQUE
);
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();

-- The one way to write an audit row. The actor is the login (session_user), never a parameter.
CREATE FUNCTION mailvault_audit(p_action text, p_target text, p_details jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_prev bytea;
    v_seq bigint;
    v_at timestamptz := clock_timestamp();
BEGIN
    -- one writer at a time keeps the chain linear
    PERFORM pg_advisory_xact_lock(727172);
    SELECT seq, hash INTO v_seq, v_prev FROM audit_log ORDER BY seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, '\x'::bytea);
    INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)
    VALUES (v_seq, v_at, session_user, p_action, p_target, coalesce(p_details, '{}'), v_prev,
            sha256(v_prev || convert_to(v_seq::text || '|' || to_char(v_at AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' || session_user || '|' || p_action || '|' ||
                   coalesce(p_target, '') || '|' || coalesce(p_details, '{}')::text, 'UTF8')));
    RETURN v_seq;
END $$;
REVOKE ALL ON FUNCTION mailvault_audit(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_audit(text, text, jsonb) TO mailvault_officer, mailvault_retention;

-- The indexer's bookkeeping: how far it has read new locations (a message seen again in another
-- account or folder is re-indexed so scope filters know), and the queue of removals from retention.
CREATE TABLE indexer_state (
    id              integer PRIMARY KEY CHECK (id = 1),
    location_watermark bigint NOT NULL DEFAULT 0
);
INSERT INTO indexer_state (id) VALUES (1);
CREATE TABLE index_queue (
    id              bigserial PRIMARY KEY,
    serial          bigint NOT NULL,
    op              text NOT NULL CHECK (op IN ('delete', 'reindex')),
    queued_at       timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, UPDATE ON indexer_state TO mailvault_indexer;
GRANT SELECT, DELETE ON index_queue TO mailvault_indexer;
GRANT INSERT ON index_queue TO mailvault_retention;
GRANT USAGE ON SEQUENCE index_queue_id_seq TO mailvault_retention;
GRANT SELECT ON officers, officer_accounts TO mailvault_indexer;

-- What the indexer noticed about a message it could only partly read (the message is indexed anyway).
ALTER TABLE messages ADD COLUMN index_note text;
GRANT UPDATE (index_note) ON messages TO mailvault_indexer;
