-- 005: the officers' service. Officers are no longer database logins: mailvault-web authenticates them
-- (a password with an optional TOTP code, an API token, or their Unix user on its socket), applies their
-- scope and writes the audit row of every access before anything is returned. Its login (a member of
-- mailvault_web) is the only one that reads content on an officer's behalf, under row-level security
-- keyed on the officer it names for each transaction (set_config('mailvault.officer', NAME, true));
-- with no officer named, nothing is visible.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mailvault_web') THEN
        CREATE ROLE mailvault_web NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailvault_web', current_database());
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM mailvault_officer', current_database());
END $$;

-- The old model's grants go: officers' own logins see nothing any more.
DROP POLICY officer_scope ON accounts;
DROP POLICY officer_scope ON folders;
DROP POLICY officer_scope ON ingest_errors;
DROP POLICY officer_scope ON locations;
DROP POLICY officer_scope ON messages;
DROP POLICY officer_scope ON blobs;
DROP FUNCTION mailvault_may_see(integer);
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM mailvault_officer;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM mailvault_officer;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM mailvault_officer;

-- Officers: people known to the service, not database roles.
ALTER TABLE officer_accounts DROP CONSTRAINT officer_accounts_role_fkey;
ALTER TABLE officers RENAME COLUMN role TO name;
ALTER TABLE officers ALTER COLUMN name TYPE text;
ALTER TABLE officers ALTER COLUMN added_by TYPE text;
ALTER TABLE officer_accounts RENAME COLUMN role TO officer;
ALTER TABLE officer_accounts ALTER COLUMN officer TYPE text;
ALTER TABLE officer_accounts ADD CONSTRAINT officer_accounts_officer_fkey
    FOREIGN KEY (officer) REFERENCES officers(name) ON DELETE CASCADE;
ALTER TABLE officers
    ADD COLUMN role text NOT NULL DEFAULT 'auditor' CHECK (role IN ('auditor', 'legal', 'admin')),
    ADD COLUMN unix_user text UNIQUE,          -- who may act as this officer on the server's socket
    ADD COLUMN password_hash text,             -- Argon2id (libsodium's crypto_pwhash_str), never the password
    ADD COLUMN totp_secret bytea,              -- RFC 6238 key; when set, a password login needs a code
    ADD COLUMN totp_last_step bigint,          -- the last time step a code was accepted for: used once
    ADD COLUMN enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN legacy_login text,              -- the database role an officer of an earlier version used
    ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now();
-- names as accounts and secrets have them (roles of earlier versions may not follow it: NOT VALID)
ALTER TABLE officers ADD CONSTRAINT officers_name_valid
    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$') NOT VALID;

-- Officers of earlier versions stay, with their scope, disabled until the administrator gives them a
-- password or a Unix user (`mailvault init` prints the steps); their database roles lose every grant.
UPDATE officers SET legacy_login = name, enabled = false;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT o.legacy_login FROM officers o JOIN pg_roles p ON p.rolname = o.legacy_login LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', r.legacy_login);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', r.legacy_login);
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM %I', r.legacy_login);
        BEGIN
            EXECUTE format('REVOKE mailvault_officer FROM %I', r.legacy_login);
        EXCEPTION WHEN insufficient_privilege OR undefined_object THEN
            RAISE WARNING 'could not take mailvault_officer from %: %', r.legacy_login, SQLERRM;
        END;
    END LOOP;
END $$;

-- True if the officer the service named for this transaction may see the account. SECURITY DEFINER so
-- the service's login needs no access to how scopes are stored beyond reading them.
CREATE FUNCTION mailvault_officer_sees(acct integer) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.officers o
                   WHERE o.name = current_setting('mailvault.officer', true) AND o.enabled
                   AND (o.all_accounts OR EXISTS (SELECT 1 FROM public.officer_accounts oa
                                                  WHERE oa.officer = o.name AND oa.account_id = acct)))
$$;
REVOKE ALL ON FUNCTION mailvault_officer_sees(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_officer_sees(integer) TO mailvault_web;

-- An officer's scope in one call, for the service to filter the index with: whether they see every account,
-- else the names of the accounts they see (row-level security above is what holds for content; this
-- only spares the service a policy check per account row on every search).
CREATE FUNCTION mailvault_officer_scope(p_officer text, OUT all_accounts boolean, OUT accounts text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT o.all_accounts,
           CASE WHEN o.all_accounts THEN NULL
                ELSE ARRAY(SELECT a.name FROM public.officer_accounts oa JOIN public.accounts a ON a.id = oa.account_id
                           WHERE oa.officer = o.name ORDER BY a.name) END
    FROM public.officers o WHERE o.name = p_officer AND o.enabled
$$;
REVOKE ALL ON FUNCTION mailvault_officer_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_officer_scope(text) TO mailvault_web;

CREATE POLICY web_scope ON accounts FOR SELECT TO mailvault_web USING (mailvault_officer_sees(id));
CREATE POLICY web_scope ON folders FOR SELECT TO mailvault_web USING (mailvault_officer_sees(account_id));
CREATE POLICY web_scope ON ingest_errors FOR SELECT TO mailvault_web USING (mailvault_officer_sees(account_id));
CREATE POLICY web_scope ON locations FOR SELECT TO mailvault_web
    USING (EXISTS (SELECT 1 FROM folders f WHERE f.id = folder_id));
CREATE POLICY web_scope ON messages FOR SELECT TO mailvault_web
    USING (EXISTS (SELECT 1 FROM locations l WHERE l.message_serial = serial));
CREATE POLICY web_scope ON blobs FOR SELECT TO mailvault_web
    USING (EXISTS (SELECT 1 FROM messages m WHERE m.sha256 = blobs.sha256));
GRANT SELECT (id, name, host, username, enabled, last_success, last_error) ON accounts TO mailvault_web;
GRANT SELECT ON folders, locations, messages, blobs, ingest_errors TO mailvault_web;
GRANT SELECT (name, role, all_accounts, unix_user, password_hash, totp_secret, enabled) ON officers TO mailvault_web;
GRANT SELECT ON officer_accounts TO mailvault_web;
GRANT SELECT (totp_last_step), UPDATE (totp_last_step) ON officers TO mailvault_web;

-- Browser sessions, shared by every instance of the service. Only hashes of the cookie and of the CSRF
-- token are kept, so a copy of this table logs nobody in.
CREATE TABLE web_sessions (
    id_hash         bytea PRIMARY KEY,
    officer         text NOT NULL REFERENCES officers(name) ON DELETE CASCADE,
    csrf_hash       bytea NOT NULL,
    via             text NOT NULL,                 -- how the officer logged in: password, password+totp
    client          text,                          -- the address they logged in from
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,          -- the absolute end, whatever the activity
    ended_at        timestamptz                    -- logout
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
GRANT SELECT, INSERT, DELETE ON web_sessions TO mailvault_web;
GRANT UPDATE (last_seen_at, ended_at) ON web_sessions TO mailvault_web;

-- API tokens: shown once when made, kept as SHA-256 (they are 256 random bits: no stretching needed).
CREATE TABLE api_tokens (
    id              bigserial PRIMARY KEY,
    officer         text NOT NULL REFERENCES officers(name) ON DELETE CASCADE,
    token_hash      bytea NOT NULL UNIQUE,
    label           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT session_user,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    revoked_by      text,
    last_used_at    timestamptz
);
GRANT SELECT (id, officer, token_hash, expires_at, revoked_at, last_used_at) ON api_tokens TO mailvault_web;
GRANT UPDATE (last_used_at) ON api_tokens TO mailvault_web;

-- Failed logins, per name and per address, for throttling across every instance.
CREATE TABLE login_failures (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    name            text,
    client          text
);
CREATE INDEX login_failures_name ON login_failures (name, at);
CREATE INDEX login_failures_client ON login_failures (client, at);
GRANT SELECT, INSERT, DELETE ON login_failures TO mailvault_web;
GRANT USAGE ON SEQUENCE login_failures_id_seq TO mailvault_web;

-- The audit log, second form. Rows say how the actor authenticated (via), from where (client) and which
-- database login recorded them; the hash covers the previous hash and every field, each prefixed with its
-- length in 8 bytes (NULL: eight 0xff bytes), so no two different rows hash alike. Rows of the first form
-- keep their hashes and the chain runs on through them.
ALTER TABLE audit_log ALTER COLUMN actor TYPE text;
ALTER TABLE audit_log
    ADD COLUMN via text,
    ADD COLUMN client text,
    ADD COLUMN recorded_by text,
    ADD COLUMN form smallint NOT NULL DEFAULT 1 CHECK (form IN (1, 2));
ALTER TABLE audit_log ALTER COLUMN form DROP DEFAULT;

CREATE FUNCTION mailvault_audit_field(t text) RETURNS bytea
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
    SELECT CASE WHEN t IS NULL THEN '\xffffffffffffffff'::bytea
                ELSE int8send(octet_length(convert_to(t, 'UTF8'))::bigint) || convert_to(t, 'UTF8') END
$$;

-- The one writer of audit rows; callable only through the functions below, which fix the actor.
CREATE FUNCTION mailvault_audit_write(p_actor text, p_via text, p_client text, p_action text, p_target text,
                                      p_details jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_prev bytea;
    v_seq bigint;
    v_at timestamptz := clock_timestamp();
    v_details jsonb := coalesce(p_details, '{}'::jsonb);
    v_by text := session_user;
BEGIN
    IF coalesce(p_actor, '') = '' OR coalesce(p_action, '') = '' THEN
        RAISE EXCEPTION 'an audit row needs an actor and an action';
    END IF;
    -- one writer at a time keeps the chain linear; the service writes many rows per transaction
    PERFORM pg_advisory_xact_lock(727172);
    SELECT seq, hash INTO v_seq, v_prev FROM public.audit_log ORDER BY seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0) + 1;
    v_prev := coalesce(v_prev, '\x'::bytea);
    INSERT INTO public.audit_log (seq, at, actor, via, client, recorded_by, action, target, details, prev_hash, hash, form)
    VALUES (v_seq, v_at, p_actor, p_via, p_client, v_by, p_action, p_target, v_details, v_prev,
            sha256(v_prev || convert_to('mailvault-audit-2', 'UTF8')
                   || public.mailvault_audit_field(v_seq::text)
                   || public.mailvault_audit_field(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                   || public.mailvault_audit_field(p_actor) || public.mailvault_audit_field(p_via)
                   || public.mailvault_audit_field(p_client) || public.mailvault_audit_field(v_by)
                   || public.mailvault_audit_field(p_action) || public.mailvault_audit_field(p_target)
                   || public.mailvault_audit_field(v_details::text)), 2);
    RETURN v_seq;
END $$;
REVOKE ALL ON FUNCTION mailvault_audit_write(text, text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION mailvault_audit_field(text) FROM PUBLIC;

-- Administrators and programs write as themselves: the actor is their login.
CREATE OR REPLACE FUNCTION mailvault_audit(p_action text, p_target text, p_details jsonb) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT public.mailvault_audit_write(session_user, 'database login', host(inet_client_addr()), p_action,
                                        p_target, p_details)
$$;
REVOKE ALL ON FUNCTION mailvault_audit(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_audit(text, text, jsonb) TO mailvault_retention;

-- The service writes on behalf of the officer it authenticated; no other program role may name an actor.
CREATE FUNCTION mailvault_audit_as(p_actor text, p_via text, p_client text, p_action text, p_target text,
                                   p_details jsonb) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT public.mailvault_audit_write(p_actor, p_via, p_client, p_action, p_target, p_details)
$$;
REVOKE ALL ON FUNCTION mailvault_audit_as(text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_audit_as(text, text, text, text, text, jsonb) TO mailvault_web;
GRANT SELECT ON audit_log TO mailvault_web;
