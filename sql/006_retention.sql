-- 006: retention policies, matters and legal holds, erasure requests, and the one deletion path filled in.
--
-- The database decides what may go: a message's retain_until is computed here (longest policy wins, from
-- its Date, or its earliest INTERNALDATE when the Date is missing or absurd), never written by a program;
-- a locked policy can only grow; a held message cannot be deleted by any role, the owner included; and
-- mailvault_dispose_batch(), the only function that deletes, re-checks holds in its own transaction and
-- leaves a proof of each disposal in the hash-chained audit log.

-- Settings the administrator fixes in mailvault.conf ([retention]); `mailvault init` copies them here so
-- that no program can pass a smaller value.
CREATE TABLE retention_settings (
    id              integer PRIMARY KEY CHECK (id = 1),
    min_age         interval NOT NULL DEFAULT '7 days' CHECK (min_age >= interval '0'),
    release_grace   interval NOT NULL DEFAULT '30 days' CHECK (release_grace >= interval '0'),
    changed_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO retention_settings (id) VALUES (1);

-- An IMAP LIST pattern (* any characters, % any but a hierarchy delimiter) as an anchored regular expression.
CREATE FUNCTION mailvault_list_pattern_regex(p text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
    SELECT '^' || replace(replace(regexp_replace(p, '([.^$+?(){}\[\]\\|])', '\\\1', 'g'), '*', '.*'), '%', '[^/.]*') || '$'
$$;

-- Retention policies. keep NULL means forever. A locked policy (SEC 17a-4 style) can be lengthened or
-- widened, never shortened, narrowed, unlocked or removed.
CREATE TABLE policies (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
    keep            interval CHECK (keep > interval '0'),
    all_accounts    boolean NOT NULL DEFAULT false,
    account_ids     integer[] NOT NULL DEFAULT '{}',
    folder_pattern  text CHECK (folder_pattern <> ''),
    folder_regex    text GENERATED ALWAYS AS (mailvault_list_pattern_regex(folder_pattern)) STORED,
    query           text CHECK (query <> ''),
    covered_through timestamptz,                -- the query's coverage is complete for messages indexed up to here
    locked          boolean NOT NULL DEFAULT false,
    locked_at       timestamptz,
    locked_by       text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    changed_by      text,
    changed_at      timestamptz,
    CHECK (all_accounts OR cardinality(account_ids) > 0)
);

-- Matters (cases) and the holds placed for them. A hold covers what its scope covers now and later:
-- accounts (or all), an optional range of message dates, an optional query evaluated by the indexer.
CREATE TABLE matters (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
    description     text NOT NULL CHECK (description <> ''),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    closed_by       text,
    closed_at       timestamptz
);
CREATE TABLE holds (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
    matter_id       bigint NOT NULL REFERENCES matters(id),
    reason          text NOT NULL CHECK (reason <> ''),
    all_accounts    boolean NOT NULL DEFAULT false,
    account_ids     integer[] NOT NULL DEFAULT '{}',
    date_from       timestamptz,                -- message dates from here ...
    date_to         timestamptz,                -- ... to before here
    query           text CHECK (query <> ''),
    covered_through timestamptz,
    placed_by       text NOT NULL,
    placed_at       timestamptz NOT NULL DEFAULT now(),
    released_by     text,
    released_at     timestamptz,
    release_reason  text,
    CHECK (all_accounts OR cardinality(account_ids) > 0),
    CHECK (date_to IS NULL OR date_from IS NULL OR date_to > date_from),
    CHECK ((released_at IS NULL) = (released_by IS NULL) AND (released_at IS NULL) = (release_reason IS NULL))
);
CREATE INDEX holds_matter ON holds (matter_id);

-- What a query of a hold or policy covers, recorded per message by the indexer once the message is indexed.
CREATE TABLE hold_coverage (
    hold_id         bigint NOT NULL REFERENCES holds(id),
    serial          bigint NOT NULL REFERENCES messages(serial) ON DELETE CASCADE,
    PRIMARY KEY (hold_id, serial)
);
CREATE TABLE policy_coverage (
    policy_id       bigint NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    serial          bigint NOT NULL REFERENCES messages(serial) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, serial)
);
CREATE INDEX hold_coverage_serial ON hold_coverage (serial);
CREATE INDEX policy_coverage_serial ON policy_coverage (serial);

-- Erasure requests (GDPR Art. 17): one officer asks, a different admin approves, retention carries out.
-- The messages are fixed when the request is made (what the query found in the requester's scope).
CREATE TABLE erasure_requests (
    id              bigserial PRIMARY KEY,
    query           text NOT NULL,
    reason          text NOT NULL CHECK (reason <> ''),
    requested_by    text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    approved_by     text,
    approved_at     timestamptz,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'done', 'refused')),
    completed_at    timestamptz
);
CREATE TABLE erasure_items (
    request_id      bigint NOT NULL REFERENCES erasure_requests(id),
    serial          bigint NOT NULL,
    sha256          bytea NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'erased', 'refused')),
    note            text,                       -- why it was refused
    PRIMARY KEY (request_id, serial)
);
CREATE INDEX erasure_items_pending ON erasure_items (serial) WHERE state = 'pending';

-- Disposal runs: what each run removed and when its bytes were physically gone.
CREATE TABLE disposal_runs (
    id              bigserial PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    disposed        bigint NOT NULL DEFAULT 0,
    erased          bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    vacuumed_at     timestamptz,                -- the tables' dead rows reclaimed
    vacuum_error    text,
    index_purged_at timestamptz                 -- the index's removals committed and old revisions dropped
);

-- Who decided a message's retain_until.
ALTER TABLE messages ADD COLUMN retain_policy text;
CREATE INDEX messages_retain_until ON messages (retain_until) WHERE retain_until IS NOT NULL;

-- The date a message's retention counts from: its Date, or its earliest INTERNALDATE (else when it was
-- archived) where the Date is missing, before 1980 or more than a day after the message was archived.
CREATE FUNCTION mailvault_base_date(p_serial bigint, p_date timestamptz, p_ingested timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE WHEN p_date IS NOT NULL AND p_date >= timestamptz '1980-01-01 00:00:00+00'
                     AND p_date <= p_ingested + interval '1 day' THEN p_date
                ELSE coalesce((SELECT min(l.internaldate) FROM public.locations l WHERE l.message_serial = p_serial),
                              p_ingested) END
$$;

-- Messages indexed after this moment have not yet been checked against every hold's and policy's query:
-- none of them is eligible for disposal.
CREATE FUNCTION mailvault_coverage_horizon() RETURNS timestamptz
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(min(coalesce(t, '-infinity')), 'infinity') FROM (
        SELECT covered_through AS t FROM public.holds WHERE query IS NOT NULL AND released_at IS NULL
        UNION ALL
        SELECT h.covered_through FROM public.holds h, public.retention_settings s
            WHERE h.query IS NOT NULL AND h.released_at + s.release_grace > now()
        UNION ALL
        SELECT covered_through FROM public.policies WHERE query IS NOT NULL) q
$$;

-- True if a hold covers the message now: an active hold, or one released less than release_grace ago,
-- whose accounts, dates and query take it in. A query hold covers every message its query has not yet
-- been evaluated on.
CREATE FUNCTION mailvault_held(p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.messages m, public.holds h, public.retention_settings s
        WHERE m.serial = p_serial
          AND (h.released_at IS NULL OR h.released_at + s.release_grace > now())
          AND (h.all_accounts OR EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                                         WHERE l.message_serial = m.serial AND f.account_id = ANY (h.account_ids)))
          AND (h.date_from IS NULL AND h.date_to IS NULL
               OR (h.date_from IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) >= h.date_from)
                  AND (h.date_to IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) < h.date_to))
          AND (h.query IS NULL OR h.covered_through IS NULL OR m.indexed_at IS NULL OR m.indexed_at > h.covered_through
               OR EXISTS (SELECT 1 FROM public.hold_coverage c WHERE c.hold_id = h.id AND c.serial = m.serial)))
$$;

-- The holds that cover a message now, by name (for refusals that say why).
CREATE FUNCTION mailvault_holds_of(p_serial bigint) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(h.name ORDER BY h.name), '{}') FROM public.messages m, public.holds h, public.retention_settings s
    WHERE m.serial = p_serial
      AND (h.released_at IS NULL OR h.released_at + s.release_grace > now())
      AND (h.all_accounts OR EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                                     WHERE l.message_serial = m.serial AND f.account_id = ANY (h.account_ids)))
      AND (h.date_from IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) >= h.date_from)
      AND (h.date_to IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) < h.date_to)
      AND (h.query IS NULL OR h.covered_through IS NULL OR m.indexed_at IS NULL OR m.indexed_at > h.covered_through
           OR EXISTS (SELECT 1 FROM public.hold_coverage c WHERE c.hold_id = h.id AND c.serial = m.serial))
$$;

-- True if hold h's scope takes the message in (whether or not the hold is still active): what `hold show`
-- counts. No SET clause, so the planner can inline it; every name is qualified.
CREATE FUNCTION mailvault_hold_covers(h public.holds, p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.messages m
        WHERE m.serial = p_serial
          AND (h.all_accounts OR EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                                         WHERE l.message_serial = m.serial AND f.account_id = ANY (h.account_ids)))
          AND (h.date_from IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) >= h.date_from)
          AND (h.date_to IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) < h.date_to)
          AND (h.query IS NULL OR h.covered_through IS NULL OR m.indexed_at IS NULL OR m.indexed_at > h.covered_through
               OR EXISTS (SELECT 1 FROM public.hold_coverage c WHERE c.hold_id = h.id AND c.serial = m.serial)))
$$;

-- True if policy p covers the message (its accounts, folders and, for a query, the recorded coverage).
CREATE FUNCTION mailvault_policy_covers(p public.policies, p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                   WHERE l.message_serial = p_serial AND (p.all_accounts OR f.account_id = ANY (p.account_ids))
                     AND (p.folder_regex IS NULL OR f.name ~ p.folder_regex))
       AND (p.query IS NULL OR EXISTS (SELECT 1 FROM public.policy_coverage c WHERE c.policy_id = p.id
                                       AND c.serial = p_serial))
$$;

-- The locked policies that keep a message now (their own expiry not reached), by name.
CREATE FUNCTION mailvault_locked_policies_of(p_serial bigint) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(array_agg(p.name ORDER BY p.name), '{}') FROM public.messages m, public.policies p
    WHERE m.serial = p_serial AND p.locked AND public.mailvault_policy_covers(p, m.serial)
      AND (p.keep IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) + p.keep > now())
$$;

-- Recomputes retain_until (and the policy that set it) for the given messages, or all when NULL: the
-- latest expiry of the policies that cover each one; NULL (kept) when none does. Returns how many
-- messages became eligible sooner than before.
CREATE FUNCTION mailvault_retention_recompute(p_serials bigint[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_sooner bigint;
BEGIN
    WITH target AS (
        SELECT m.serial, m.retain_until AS old_until, public.mailvault_base_date(m.serial, m.date, m.ingested_at) AS base
        FROM public.messages m WHERE p_serials IS NULL OR m.serial = ANY (p_serials)
    ), best AS (
        SELECT DISTINCT ON (t.serial) t.serial,
               CASE WHEN p.keep IS NULL THEN timestamptz 'infinity' ELSE t.base + p.keep END AS until, p.name
        FROM target t JOIN public.policies p ON public.mailvault_policy_covers(p, t.serial)
        ORDER BY t.serial, 2 DESC, p.name
    ), upd AS (
        UPDATE public.messages m SET retain_until = b.until, retain_policy = b.name
        FROM target t LEFT JOIN best b ON b.serial = t.serial
        WHERE m.serial = t.serial AND (m.retain_until IS DISTINCT FROM b.until OR m.retain_policy IS DISTINCT FROM b.name)
        RETURNING t.old_until, b.until
    )
    SELECT count(*) INTO v_sooner FROM upd
        WHERE coalesce(upd.until, 'infinity') < coalesce(upd.old_until, 'infinity');
    RETURN v_sooner;
END $$;

-- retain_until is the database's: set when a message is stored in a new place, recomputed when policies change.
CREATE FUNCTION mailvault_location_retention() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.policies) THEN
        PERFORM public.mailvault_retention_recompute(ARRAY(SELECT DISTINCT message_serial FROM new_locations));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER locations_retention AFTER INSERT ON locations REFERENCING NEW TABLE AS new_locations
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_location_retention();

-- Policy changes: a locked policy only grows; every change recomputes retain_until and leaves the number
-- of messages made eligible sooner in mailvault.sooner, for the service to confirm or roll back.
-- Changes to policies, holds and matters wait for a disposal batch in progress (and it for them).
CREATE FUNCTION mailvault_policies_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_rest public.policies%ROWTYPE;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.covered_through IS DISTINCT FROM OLD.covered_through THEN
        IF current_user <> 'mailvault_owner' THEN
            RAISE EXCEPTION 'mailvault: only the indexer records what a policy''s query covers'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- the indexer's bookkeeping alone changes nothing about what is kept
        v_rest := NEW;
        v_rest.covered_through := OLD.covered_through;
        IF v_rest IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(727173);
    IF TG_OP = 'INSERT' THEN
        IF NEW.locked THEN
            RAISE EXCEPTION 'mailvault: a policy is made first, then locked' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NOT OLD.locked THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'mailvault: policy % is locked: it cannot be removed', OLD.name USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT NEW.locked OR NEW.name <> OLD.name OR NEW.locked_at IS DISTINCT FROM OLD.locked_at
       OR NEW.locked_by IS DISTINCT FROM OLD.locked_by OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'mailvault: policy % is locked: it cannot be unlocked or renamed', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.keep IS NULL AND NEW.keep IS NOT NULL OR NEW.keep < OLD.keep THEN
        RAISE EXCEPTION 'mailvault: policy % is locked: its retention can be lengthened, not shortened', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.all_accounts AND NOT NEW.all_accounts OR NOT NEW.all_accounts AND NOT NEW.account_ids @> OLD.account_ids
       OR NEW.folder_pattern IS NOT NULL AND NEW.folder_pattern IS DISTINCT FROM OLD.folder_pattern AND NEW.folder_pattern <> '*'
       OR NEW.query IS NOT NULL AND NEW.query IS DISTINCT FROM OLD.query THEN
        RAISE EXCEPTION 'mailvault: policy % is locked: its scope can be widened, not narrowed or changed', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER policies_guard BEFORE INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION mailvault_policies_guard();
CREATE TRIGGER policies_no_truncate BEFORE TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();

-- Recomputes every retention date after a change of policies and adds the number of messages made
-- eligible sooner to mailvault.sooner (transaction-local), for the service to confirm or roll back.
CREATE FUNCTION mailvault_policies_recompute() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_sooner bigint;
BEGIN
    v_sooner := public.mailvault_retention_recompute(NULL);
    PERFORM set_config('mailvault.sooner',
                       (coalesce(nullif(current_setting('mailvault.sooner', true), ''), '0')::bigint + v_sooner)::text, true);
END $$;
REVOKE ALL ON FUNCTION mailvault_policies_recompute() FROM PUBLIC;
CREATE FUNCTION mailvault_policies_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM public.mailvault_policies_recompute();
    RETURN NULL;
END $$;
-- an update of the indexer's bookkeeping (covered_through) alone changes no retention
CREATE FUNCTION mailvault_policies_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_policies o JOIN new_policies n ON n.id = o.id
               WHERE (o.keep, o.all_accounts, o.account_ids, o.folder_pattern, o.query)
                     IS DISTINCT FROM (n.keep, n.all_accounts, n.account_ids, n.folder_pattern, n.query)) THEN
        PERFORM public.mailvault_policies_recompute();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER policies_added AFTER INSERT ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_policies_changed();
CREATE TRIGGER policies_removed AFTER DELETE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_policies_changed();
CREATE TRIGGER policies_changed AFTER UPDATE ON policies REFERENCING OLD TABLE AS old_policies NEW TABLE AS new_policies
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_policies_updated();

-- Matters are never removed; one closes only when none of its holds is active.
CREATE FUNCTION mailvault_matters_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'mailvault: matters are records: % cannot be removed', OLD.name USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'mailvault: a matter is opened before it is closed' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.name, NEW.created_by, NEW.created_at) IS DISTINCT FROM (OLD.id, OLD.name, OLD.created_by, OLD.created_at)
       OR OLD.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'mailvault: matter % is a record: only its description changes, and it closes once', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.closed_at IS NOT NULL AND EXISTS (SELECT 1 FROM public.holds h WHERE h.matter_id = OLD.id AND h.released_at IS NULL) THEN
        RAISE EXCEPTION 'mailvault: matter % has active holds (%): release them first', OLD.name,
            (SELECT string_agg(h.name, ', ' ORDER BY h.name) FROM public.holds h WHERE h.matter_id = OLD.id AND h.released_at IS NULL)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER matters_guard BEFORE INSERT OR UPDATE OR DELETE ON matters
    FOR EACH ROW EXECUTE FUNCTION mailvault_matters_guard();
CREATE TRIGGER matters_no_truncate BEFORE TRUNCATE ON matters
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();

-- Holds are never removed; a hold is placed in an open matter and released once, with a reason; only the
-- indexer's bookkeeping (covered_through, through its function) changes otherwise.
CREATE FUNCTION mailvault_holds_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.covered_through IS DISTINCT FROM OLD.covered_through
       AND current_user <> 'mailvault_owner' THEN
        RAISE EXCEPTION 'mailvault: only the indexer records what a hold''s query covers' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- placing and releasing wait for a disposal batch in progress; the indexer's bookkeeping does not
    IF TG_OP <> 'UPDATE' OR (NEW.released_at, NEW.released_by, NEW.release_reason)
                            IS DISTINCT FROM (OLD.released_at, OLD.released_by, OLD.release_reason) THEN
        PERFORM pg_advisory_xact_lock(727173);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'mailvault: holds are records: % cannot be removed (release it)', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.released_at IS NOT NULL OR NEW.covered_through IS NOT NULL THEN
            RAISE EXCEPTION 'mailvault: a new hold is active and not yet evaluated' USING ERRCODE = 'check_violation';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM public.matters m WHERE m.id = NEW.matter_id AND m.closed_at IS NULL) THEN
            RAISE EXCEPTION 'mailvault: holds are placed in an open matter' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.name, NEW.matter_id, NEW.reason, NEW.all_accounts, NEW.account_ids, NEW.date_from, NEW.date_to,
        NEW.query, NEW.placed_by, NEW.placed_at) IS DISTINCT FROM
       (OLD.id, OLD.name, OLD.matter_id, OLD.reason, OLD.all_accounts, OLD.account_ids, OLD.date_from, OLD.date_to,
        OLD.query, OLD.placed_by, OLD.placed_at)
       OR OLD.released_at IS NOT NULL AND (NEW.released_at, NEW.released_by, NEW.release_reason)
          IS DISTINCT FROM (OLD.released_at, OLD.released_by, OLD.release_reason) THEN
        RAISE EXCEPTION 'mailvault: hold % is a record: it is only released, once', OLD.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_guard BEFORE INSERT OR UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION mailvault_holds_guard();
CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER hold_coverage_no_change BEFORE UPDATE ON hold_coverage
    FOR EACH ROW EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER hold_coverage_no_truncate BEFORE TRUNCATE ON hold_coverage
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER hold_coverage_no_delete BEFORE DELETE ON hold_coverage
    FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();

-- Erasure requests and their messages are records too.
CREATE TRIGGER erasure_requests_no_delete BEFORE DELETE ON erasure_requests
    FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER erasure_items_no_delete BEFORE DELETE ON erasure_items
    FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER erasure_requests_no_truncate BEFORE TRUNCATE ON erasure_requests
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER erasure_items_no_truncate BEFORE TRUNCATE ON erasure_items
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();

-- retain_until and retain_policy are the database's: only its own functions (running as the owner) set them.
CREATE OR REPLACE FUNCTION mailvault_messages_guard() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF (NEW.serial, NEW.sha256, NEW.message_id, NEW.date, NEW.from_addr, NEW.to_addr, NEW.cc_addr,
        NEW.subject, NEW.size, NEW.header_error, NEW.ingested_at)
       IS DISTINCT FROM
       (OLD.serial, OLD.sha256, OLD.message_id, OLD.date, OLD.from_addr, OLD.to_addr, OLD.cc_addr,
        OLD.subject, OLD.size, OLD.header_error, OLD.ingested_at) THEN
        RAISE EXCEPTION 'mailvault: archived message fields are immutable (serial %)', OLD.serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.retain_until, NEW.retain_policy) IS DISTINCT FROM (OLD.retain_until, OLD.retain_policy)
       AND current_user <> 'mailvault_owner' THEN
        RAISE EXCEPTION 'mailvault: retain_until is computed by the database from the policies (serial %)', OLD.serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
REVOKE UPDATE (retain_until) ON messages FROM mailvault_retention;

-- A held message cannot be deleted by anyone, the disposal function included.
CREATE FUNCTION mailvault_guard_delete_message() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('mailvault.disposing', true) IS DISTINCT FROM 'on' OR current_user <> 'mailvault_owner' THEN
        RAISE EXCEPTION 'mailvault: DELETE on messages is refused: archived content leaves only through retention disposal'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF public.mailvault_held(OLD.serial) THEN
        RAISE EXCEPTION 'mailvault: message % is under a legal hold and cannot be deleted', OLD.serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END $$;
DROP TRIGGER messages_no_delete ON messages;
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete_message();

-- The one deletion path, replacing the placeholder of 004.
DROP FUNCTION mailvault_dispose(bigint, text);

-- Removes one message whose disposal has been decided and checked: its places, the message, its blob when
-- nothing else refers to it; queues its removal from the index; writes its proof. Internal.
CREATE FUNCTION mailvault_dispose_one(p_serial bigint, p_reason text, p_policy text, p_request bigint)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET mailvault.disposing = 'on' AS $$
DECLARE
    m public.messages%ROWTYPE;
    v_accounts text[];
BEGIN
    SELECT * INTO m FROM public.messages WHERE serial = p_serial;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    v_accounts := ARRAY(SELECT DISTINCT a.name FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                        JOIN public.accounts a ON a.id = f.account_id WHERE l.message_serial = p_serial ORDER BY 1);
    DELETE FROM public.locations WHERE message_serial = p_serial;
    DELETE FROM public.messages WHERE serial = p_serial;
    DELETE FROM public.blobs b WHERE b.sha256 = m.sha256
        AND NOT EXISTS (SELECT 1 FROM public.ingest_errors e WHERE e.sha256 = m.sha256);
    INSERT INTO public.index_queue (serial, op) VALUES (p_serial, 'delete');
    PERFORM public.mailvault_audit_write(session_user, 'retention', NULL, 'dispose', 'message ' || p_serial,
        jsonb_build_object('serial', p_serial, 'sha256', encode(m.sha256, 'hex'), 'message_id', m.message_id,
                           'date', m.date, 'size', m.size, 'accounts', to_jsonb(v_accounts),
                           'ingested_at', m.ingested_at, 'reason', p_reason, 'policy', p_policy,
                           'retain_until', m.retain_until, 'erasure_request', p_request,
                           'disposed_at', clock_timestamp()));
    RETURN m.size;
END $$;
REVOKE ALL ON FUNCTION mailvault_dispose_one(bigint, text, text, bigint) FROM PUBLIC;

-- The messages eligible for disposal now, in serial order after p_after: past retain_until, archived at
-- least min_age ago, indexed and checked against every query, under no hold. For reports (dry runs) and
-- for the disposal itself.
CREATE FUNCTION mailvault_disposal_candidates(p_after bigint, p_limit integer)
    RETURNS TABLE (serial bigint, size bigint, policy text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT m.serial, m.size, m.retain_policy FROM public.messages m, public.retention_settings s
    WHERE m.serial > p_after AND m.retain_until <= now() AND m.ingested_at <= now() - s.min_age
      AND m.indexed_at IS NOT NULL AND m.indexed_at <= (SELECT public.mailvault_coverage_horizon())
      AND NOT public.mailvault_held(m.serial)
    ORDER BY m.serial LIMIT p_limit
$$;

-- One batch of disposal: up to p_limit messages after serial p_after, for at most p_max_ms milliseconds.
-- Holds are checked again here, in the transaction that deletes, while changes to holds and policies wait.
-- Returns what went (serial, size, why) and, last, the serial to continue after (serial NULL when done).
CREATE FUNCTION mailvault_dispose_batch(p_after bigint, p_limit integer, p_max_ms integer)
    RETURNS TABLE (serial bigint, size bigint, reason text, policy text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    r record;
    v_start timestamptz := clock_timestamp();
    v_last bigint := p_after;
    v_n integer := 0;
    v_size bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
        RAISE EXCEPTION 'mailvault: a disposal batch holds 1 to 10000 messages' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(727173);
    FOR r IN SELECT c.serial, c.policy FROM public.mailvault_disposal_candidates(p_after, p_limit) c LOOP
        v_last := r.serial;
        -- locked against a concurrent run; one that went already is skipped
        PERFORM 1 FROM public.messages m WHERE m.serial = r.serial FOR UPDATE SKIP LOCKED;
        IF FOUND AND NOT public.mailvault_held(r.serial) THEN
            v_size := public.mailvault_dispose_one(r.serial, 'retention', r.policy, NULL);
            serial := r.serial; size := v_size; reason := 'retention'; policy := r.policy;
            RETURN NEXT;
        END IF;
        v_n := v_n + 1;
        EXIT WHEN clock_timestamp() - v_start > make_interval(secs => coalesce(p_max_ms, 500) / 1000.0);
    END LOOP;
    serial := CASE WHEN v_n = 0 THEN NULL ELSE v_last END; size := NULL; reason := 'continue'; policy := NULL;
    RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION mailvault_dispose_batch(bigint, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_dispose_batch(bigint, integer, integer) TO mailvault_retention;
REVOKE ALL ON FUNCTION mailvault_disposal_candidates(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_disposal_candidates(bigint, integer) TO mailvault_retention, mailvault_web;

-- Approved erasures, up to p_limit messages: each one still under a hold or a locked policy is refused
-- (with the reason kept on the item), the others go the same way as expired ones. A request is done when
-- none of its messages is pending.
CREATE FUNCTION mailvault_erase_batch(p_limit integer) RETURNS TABLE (serial bigint, size bigint, request bigint, state text, note text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    r record;
    v_holds text[];
    v_locked text[];
BEGIN
    PERFORM pg_advisory_xact_lock_shared(727173);
    FOR r IN SELECT i.request_id, i.serial FROM public.erasure_items i JOIN public.erasure_requests q ON q.id = i.request_id
             WHERE q.status = 'approved' AND i.state = 'pending' ORDER BY i.request_id, i.serial
             LIMIT p_limit FOR UPDATE OF i SKIP LOCKED LOOP
        v_holds := public.mailvault_holds_of(r.serial);
        v_locked := public.mailvault_locked_policies_of(r.serial);
        serial := r.serial; request := r.request_id; size := NULL;
        IF cardinality(v_holds) > 0 OR cardinality(v_locked) > 0 THEN
            state := 'refused';
            note := CASE WHEN cardinality(v_holds) > 0 THEN 'under hold ' || array_to_string(v_holds, ', ')
                         ELSE 'kept by locked policy ' || array_to_string(v_locked, ', ') END;
        ELSIF NOT EXISTS (SELECT 1 FROM public.messages m WHERE m.serial = r.serial) THEN
            state := 'erased'; note := 'already gone';
        ELSE
            size := public.mailvault_dispose_one(r.serial, 'erasure', NULL, r.request_id);
            state := 'erased'; note := NULL;
        END IF;
        UPDATE public.erasure_items i SET state = mailvault_erase_batch.state, note = mailvault_erase_batch.note
            WHERE i.request_id = r.request_id AND i.serial = r.serial;
        RETURN NEXT;
    END LOOP;
    UPDATE public.erasure_requests q SET status = 'done', completed_at = now()
        WHERE q.status = 'approved'
          AND NOT EXISTS (SELECT 1 FROM public.erasure_items i WHERE i.request_id = q.id AND i.state = 'pending');
END $$;
REVOKE ALL ON FUNCTION mailvault_erase_batch(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_erase_batch(integer) TO mailvault_retention;

-- An erasure request, made by the service for an officer: the messages their query found, each checked
-- now; those under a hold or a locked policy are refused with the reason. Returns the request's id.
CREATE FUNCTION mailvault_erasure_request(p_officer text, p_query text, p_reason text, p_serials bigint[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.officers o WHERE o.name = p_officer AND o.enabled) THEN
        RAISE EXCEPTION 'mailvault: no enabled officer %', p_officer USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF coalesce(cardinality(p_serials), 0) = 0 THEN
        RAISE EXCEPTION 'mailvault: the query finds no message to erase' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.erasure_requests (query, reason, requested_by) VALUES (p_query, p_reason, p_officer)
        RETURNING id INTO v_id;
    INSERT INTO public.erasure_items (request_id, serial, sha256, state, note)
        SELECT v_id, m.serial, m.sha256,
               CASE WHEN cardinality(h.holds) > 0 OR cardinality(l.locked) > 0 THEN 'refused' ELSE 'pending' END,
               CASE WHEN cardinality(h.holds) > 0 THEN 'under hold ' || array_to_string(h.holds, ', ')
                    WHEN cardinality(l.locked) > 0 THEN 'kept by locked policy ' || array_to_string(l.locked, ', ') END
        FROM public.messages m,
             LATERAL (SELECT public.mailvault_holds_of(m.serial) AS holds) h,
             LATERAL (SELECT public.mailvault_locked_policies_of(m.serial) AS locked) l
        WHERE m.serial = ANY (p_serials)
          -- only what the officer may see, whatever the service passed
          AND EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                      JOIN public.officers o ON o.name = p_officer
                      WHERE l.message_serial = m.serial
                        AND (o.all_accounts OR EXISTS (SELECT 1 FROM public.officer_accounts oa
                                                       WHERE oa.officer = o.name AND oa.account_id = f.account_id)));
    IF NOT EXISTS (SELECT 1 FROM public.erasure_items WHERE request_id = v_id) THEN
        RAISE EXCEPTION 'mailvault: none of those messages is in the officer''s scope' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.erasure_items WHERE request_id = v_id AND state = 'pending') THEN
        UPDATE public.erasure_requests SET status = 'refused', completed_at = now() WHERE id = v_id;
    END IF;
    RETURN v_id;
END $$;

-- Four eyes: an admin other than the requester approves; messages that came under a hold or a locked
-- policy since the request are refused now, the rest wait for mailvault-retention.
CREATE FUNCTION mailvault_erasure_approve(p_id bigint, p_officer text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    q public.erasure_requests%ROWTYPE;
    v_pending bigint;
BEGIN
    SELECT * INTO q FROM public.erasure_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailvault: no erasure request %', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.officers o WHERE o.name = p_officer AND o.enabled AND o.role = 'admin') THEN
        RAISE EXCEPTION 'mailvault: erasure requests are approved by an officer of the admin role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF q.requested_by = p_officer THEN
        RAISE EXCEPTION 'mailvault: erasure request % was made by %: a different officer must approve it', p_id, p_officer
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF q.status <> 'pending' THEN
        RAISE EXCEPTION 'mailvault: erasure request % is %, not pending', p_id, q.status USING ERRCODE = 'check_violation';
    END IF;
    UPDATE public.erasure_items i SET state = 'refused',
           note = CASE WHEN cardinality(public.mailvault_holds_of(i.serial)) > 0
                       THEN 'under hold ' || array_to_string(public.mailvault_holds_of(i.serial), ', ')
                       ELSE 'kept by locked policy ' || array_to_string(public.mailvault_locked_policies_of(i.serial), ', ') END
        WHERE i.request_id = p_id AND i.state = 'pending'
          AND (cardinality(public.mailvault_holds_of(i.serial)) > 0 OR cardinality(public.mailvault_locked_policies_of(i.serial)) > 0);
    SELECT count(*) INTO v_pending FROM public.erasure_items WHERE request_id = p_id AND state = 'pending';
    UPDATE public.erasure_requests SET approved_by = p_officer, approved_at = now(),
           status = CASE WHEN v_pending > 0 THEN 'approved' ELSE 'refused' END,
           completed_at = CASE WHEN v_pending > 0 THEN NULL ELSE now() END
        WHERE id = p_id;
    RETURN v_pending;
END $$;
REVOKE ALL ON FUNCTION mailvault_erasure_request(text, text, text, bigint[]), mailvault_erasure_approve(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_erasure_request(text, text, text, bigint[]), mailvault_erasure_approve(bigint, text)
    TO mailvault_web;

-- The indexer records what each query covers among the messages it has indexed, and up to when.
CREATE FUNCTION mailvault_coverage_record(p_kind text, p_id bigint, p_serials bigint[], p_through timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_new bigint[];
BEGIN
    IF p_kind = 'hold' THEN
        WITH ins AS (INSERT INTO public.hold_coverage (hold_id, serial)
                     SELECT p_id, m.serial FROM public.messages m WHERE m.serial = ANY (p_serials)
                     ON CONFLICT DO NOTHING RETURNING serial)
        SELECT array_agg(serial) INTO v_new FROM ins;
        IF p_through IS NOT NULL THEN
            UPDATE public.holds SET covered_through = greatest(covered_through, p_through) WHERE id = p_id;
        END IF;
    ELSIF p_kind = 'policy' THEN
        WITH ins AS (INSERT INTO public.policy_coverage (policy_id, serial)
                     SELECT p_id, m.serial FROM public.messages m WHERE m.serial = ANY (p_serials)
                     ON CONFLICT DO NOTHING RETURNING serial)
        SELECT array_agg(serial) INTO v_new FROM ins;
        IF v_new IS NOT NULL THEN
            PERFORM public.mailvault_retention_recompute(v_new);
        END IF;
        IF p_through IS NOT NULL THEN
            UPDATE public.policies SET covered_through = greatest(covered_through, p_through) WHERE id = p_id;
        END IF;
    ELSE
        RAISE EXCEPTION 'mailvault: coverage is of a hold or a policy, not %', p_kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce(cardinality(v_new), 0);
END $$;
REVOKE ALL ON FUNCTION mailvault_coverage_record(text, bigint, bigint[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_coverage_record(text, bigint, bigint[], timestamptz) TO mailvault_indexer;
GRANT SELECT (id, query, covered_through, released_at) ON holds TO mailvault_indexer;
GRANT SELECT (id, query, covered_through) ON policies TO mailvault_indexer;
GRANT SELECT ON retention_settings TO mailvault_indexer;
GRANT SELECT ON disposal_runs TO mailvault_indexer;
GRANT UPDATE (index_purged_at) ON disposal_runs TO mailvault_indexer;

-- Retention: reads what it reports on, records its runs; deletes only through the functions above.
GRANT SELECT ON policies, matters, holds, hold_coverage, policy_coverage, retention_settings, erasure_requests,
    erasure_items, disposal_runs TO mailvault_retention;
GRANT INSERT (started_at), UPDATE (finished_at, disposed, erased, bytes, vacuumed_at, vacuum_error) ON disposal_runs
    TO mailvault_retention;
GRANT USAGE ON SEQUENCE disposal_runs_id_seq TO mailvault_retention;
GRANT EXECUTE ON FUNCTION mailvault_held(bigint), mailvault_holds_of(bigint), mailvault_locked_policies_of(bigint)
    TO mailvault_retention, mailvault_web;

-- The service: officers' actions on policies, matters and holds (who may do what is its decision, by role;
-- what may change at all is the triggers' above).
GRANT SELECT ON policies, matters, holds, hold_coverage, policy_coverage, retention_settings, erasure_requests,
    erasure_items, disposal_runs TO mailvault_web;
GRANT INSERT (name, keep, all_accounts, account_ids, folder_pattern, query, created_by),
      UPDATE (keep, all_accounts, account_ids, folder_pattern, query, locked, locked_at, locked_by, changed_by, changed_at),
      DELETE ON policies TO mailvault_web;
GRANT INSERT (name, description, created_by), UPDATE (description, closed_by, closed_at) ON matters TO mailvault_web;
GRANT INSERT (name, matter_id, reason, all_accounts, account_ids, date_from, date_to, query, placed_by),
      UPDATE (released_by, released_at, release_reason) ON holds TO mailvault_web;
GRANT USAGE ON SEQUENCE policies_id_seq, matters_id_seq, holds_id_seq TO mailvault_web;
GRANT SELECT (retain_until, retain_policy) ON messages TO mailvault_web;
GRANT EXECUTE ON FUNCTION mailvault_hold_covers(holds, bigint), mailvault_policy_covers(policies, bigint),
    mailvault_base_date(bigint, timestamptz, timestamptz) TO mailvault_web;
