-- 006: retention policies, matters and legal holds, erasure requests, and the one deletion path filled in.
--
-- The database decides what may go: a message's retain_until is computed here (longest policy wins, from
-- its Date, or its earliest INTERNALDATE when the Date is missing or absurd), never written by a program;
-- a locked policy can only grow; a held message cannot be deleted by any role, the owner included; and
-- mailvault_dispose_batch(), the only function that deletes, re-checks holds in its own transaction and
-- leaves a proof of each disposal in the hash-chained audit log.

-- Every function here that reads the archive runs with JIT off: its statements take milliseconds, and the
-- planner's guesses about the arrays they are given (and about small tables still without statistics)
-- made PostgreSQL spend over half a second compiling each call; disposal of the demo's archive ran at
-- 100 messages a second for that alone.

-- Nobody but the owner creates objects where the owner's functions look names up (the default since
-- PostgreSQL 15; not for a database made by an earlier version).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

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
-- (No foreign key to messages: the disposal removes a message's coverage rows with it, set by set, and
-- the indexer records only messages that exist.)
CREATE TABLE hold_coverage (
    hold_id         bigint NOT NULL REFERENCES holds(id),
    serial          bigint NOT NULL,
    PRIMARY KEY (hold_id, serial)
);
CREATE TABLE policy_coverage (
    policy_id       bigint NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    serial          bigint NOT NULL,
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
    -- the accounts its message was in when it was asked for: an officer sees the item only if they see one
    -- of them, and approves the request only if they see them all (the message may be gone since)
    account_ids     integer[] NOT NULL,
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
-- The functions of this group have no SET clause so that the planner inlines them into the statements
-- that use them (set-based, no call per message); every name in them is qualified.
CREATE FUNCTION mailvault_base_date(p_serial bigint, p_date timestamptz, p_ingested timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE AS $$
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

-- The one statement of what a hold covers, for a set of messages at once (given by their columns, so that
-- it also judges rows being deleted): the holds in force (active, or released less than release_grace
-- ago), or with p_hold just that hold whatever its state, whose accounts, range of dates and query take each
-- message in. A message its query has not yet been evaluated on counts as covered.
CREATE FUNCTION mailvault_holds_covering(p_serials bigint[], p_dates timestamptz[], p_ingested timestamptz[],
                                         p_indexed timestamptz[], p_hold bigint DEFAULT NULL,
                                         p_more_serials bigint[] DEFAULT '{}', p_more_accounts integer[] DEFAULT '{}')
    RETURNS TABLE (serial bigint, hold_id bigint, hold text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
    -- the accounts and recorded query coverage of just these messages, so that every test below is a
    -- look-up in a few rows, whatever the size of the archive (p_more_*: places being deleted, which the
    -- table no longer shows)
    WITH m AS (SELECT * FROM unnest(p_serials, p_dates, p_ingested, p_indexed) AS u(serial, date, ingested_at, indexed_at)),
    acct AS MATERIALIZED (SELECT l.message_serial, f.account_id FROM public.locations l
                          JOIN public.folders f ON f.id = l.folder_id WHERE l.message_serial = ANY (p_serials)
                          UNION SELECT * FROM unnest(p_more_serials, p_more_accounts)),
    cov AS MATERIALIZED (SELECT c.hold_id, c.serial FROM public.hold_coverage c WHERE c.serial = ANY (p_serials)),
    h AS MATERIALIZED (SELECT h.* FROM public.holds h, public.retention_settings s
                       WHERE CASE WHEN p_hold IS NULL THEN h.released_at IS NULL OR h.released_at + s.release_grace > now()
                                  ELSE h.id = p_hold END),
    -- which (message, hold) pairs meet on an account, once; then joins, so that every test is a hash look-up
    hit AS MATERIALIZED (SELECT DISTINCT a.message_serial, hh.id AS hold_id FROM acct a JOIN h hh
                         ON a.account_id = ANY (hh.account_ids))
    SELECT m.serial, h.id, h.name
    FROM m CROSS JOIN h
    LEFT JOIN hit ON hit.message_serial = m.serial AND hit.hold_id = h.id
    LEFT JOIN cov ON cov.serial = m.serial AND cov.hold_id = h.id
    WHERE (h.all_accounts OR hit.message_serial IS NOT NULL)
      AND (h.date_from IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) >= h.date_from)
      AND (h.date_to IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) < h.date_to)
      AND (h.query IS NULL OR h.covered_through IS NULL OR m.indexed_at IS NULL OR m.indexed_at > h.covered_through
           OR cov.serial IS NOT NULL)
$$;

-- Of the given messages, those a hold in force covers (one statement for a whole batch).
CREATE FUNCTION mailvault_held_among(p_serials bigint[]) RETURNS SETOF bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
    SELECT DISTINCT c.serial FROM (SELECT array_agg(m.serial) AS s, array_agg(m.date) AS d, array_agg(m.ingested_at) AS g,
                                          array_agg(m.indexed_at) AS x
                                   FROM public.messages m WHERE m.serial = ANY (p_serials)) a,
                                  public.mailvault_holds_covering(a.s, a.d, a.g, a.x) c
$$;

-- True if a hold in force covers the message.
CREATE FUNCTION mailvault_held(p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
    SELECT EXISTS (SELECT 1 FROM public.mailvault_held_among(ARRAY[p_serial]))
$$;

-- The holds in force that cover a message, by name (for refusals that say why).
CREATE FUNCTION mailvault_holds_of(p_serial bigint) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
    SELECT coalesce(array_agg(c.hold ORDER BY c.hold), '{}')
    FROM public.messages m, public.mailvault_holds_covering(ARRAY[m.serial], ARRAY[m.date], ARRAY[m.ingested_at],
                                                            ARRAY[m.indexed_at]) c
    WHERE m.serial = p_serial
$$;

-- True if one of the message's places is where policy p applies: its accounts and folders. (Plain SQL,
-- so that the planner inlines it where it is used.)
CREATE FUNCTION mailvault_policy_places(p public.policies, p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id
                   WHERE l.message_serial = p_serial AND (p.all_accounts OR f.account_id = ANY (p.account_ids))
                     AND (p.folder_regex IS NULL OR f.name ~ p.folder_regex))
$$;

-- True if policy p covers the message (its accounts, folders and, for a query, the recorded coverage).
CREATE FUNCTION mailvault_policy_covers(p public.policies, p_serial bigint) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT public.mailvault_policy_places(p, p_serial)
       AND (p.query IS NULL OR EXISTS (SELECT 1 FROM public.policy_coverage c WHERE c.policy_id = p.id
                                       AND c.serial = p_serial))
$$;

-- The locked policies that keep a message now (their own expiry not reached), by name.
CREATE FUNCTION mailvault_locked_policies_of(p_serial bigint) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
    -- a message the policy's query has not yet been evaluated on counts as kept, as for holds
    SELECT coalesce(array_agg(p.name ORDER BY p.name), '{}') FROM public.messages m, public.policies p
    WHERE m.serial = p_serial AND p.locked AND public.mailvault_policy_places(p, m.serial)
      AND (p.query IS NULL OR p.covered_through IS NULL OR m.indexed_at IS NULL OR m.indexed_at > p.covered_through
           OR EXISTS (SELECT 1 FROM public.policy_coverage c WHERE c.policy_id = p.id AND c.serial = m.serial))
      AND (p.keep IS NULL OR public.mailvault_base_date(m.serial, m.date, m.ingested_at) + p.keep > now())
$$;

-- Recomputes retain_until (and the policy that set it) for the given messages, or all when NULL: the
-- latest expiry of the policies that cover each one; NULL (kept) when none does. Returns how many
-- messages became eligible sooner than before.
CREATE FUNCTION mailvault_retention_recompute(p_serials bigint[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    c refcursor;
    r record;
    v_sooner bigint := 0;
BEGIN
    -- per message, the one policy whose expiry is latest; only changed rows are written (one scan, one
    -- UPDATE per change: no join for the planner to get wrong on a table whose statistics lag). Two texts,
    -- so that the poller's few new messages are found by the primary key, never by a scan of the archive.
    OPEN c FOR EXECUTE
        'SELECT t.serial, t.retain_until AS old_until, t.retain_policy AS old_policy, b.until, b.name
         FROM public.messages t
         LEFT JOIN LATERAL (
             SELECT CASE WHEN p.keep IS NULL THEN timestamptz ''infinity''
                         ELSE public.mailvault_base_date(t.serial, t.date, t.ingested_at) + p.keep END AS until,
                    p.name
             FROM public.policies p WHERE public.mailvault_policy_covers(p, t.serial)
             ORDER BY 1 DESC, p.name LIMIT 1) b ON true'
        || CASE WHEN p_serials IS NULL THEN '' ELSE ' WHERE t.serial = ANY ($1)' END
        USING p_serials;
    LOOP
        FETCH c INTO r;
        EXIT WHEN NOT FOUND;
        CONTINUE WHEN r.old_until IS NOT DISTINCT FROM r.until AND r.old_policy IS NOT DISTINCT FROM r.name;
        UPDATE public.messages SET retain_until = r.until, retain_policy = r.name WHERE serial = r.serial;
        IF coalesce(r.until, 'infinity') < coalesce(r.old_until, 'infinity') THEN
            v_sooner := v_sooner + 1;
        END IF;
    END LOOP;
    CLOSE c;
    RETURN v_sooner;
END $$;

-- retain_until is the database's: set when a message is stored in a new place, recomputed when policies change.
CREATE FUNCTION mailvault_location_retention() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.policies) THEN
        -- computed under the shared lock: a change of policies in progress (which holds it exclusively and
        -- recomputes the whole archive) commits first and is seen, or waits for this batch and sees it
        PERFORM pg_advisory_xact_lock_shared(727173);
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
    -- compared where they land in the calendar, from dates where months and years differ most (interval
    -- comparison counts a month as 30 days: '2521 days' would pass for longer than '7 years')
    IF OLD.keep IS NULL AND NEW.keep IS NOT NULL
       OR OLD.keep IS NOT NULL AND NEW.keep IS NOT NULL AND EXISTS (
           SELECT 1 FROM unnest(ARRAY[timestamptz '2000-01-31', '2000-02-29', '2001-02-28', '2003-03-31', '2003-12-31',
                                      '2004-02-29', '2007-08-31']) AS d(d)
           WHERE d.d + NEW.keep < d.d + OLD.keep) THEN
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
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_sooner bigint;
BEGIN
    v_sooner := public.mailvault_retention_recompute(NULL);
    PERFORM set_config('mailvault.sooner',
                       (coalesce(nullif(current_setting('mailvault.sooner', true), ''), '0')::bigint + v_sooner)::text, true);
END $$;
REVOKE ALL ON FUNCTION mailvault_policies_recompute() FROM PUBLIC;
CREATE FUNCTION mailvault_policies_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
BEGIN
    PERFORM public.mailvault_policies_recompute();
    RETURN NULL;
END $$;
-- an update of the indexer's bookkeeping (covered_through) alone changes no retention
CREATE FUNCTION mailvault_policies_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
BEGIN
    -- a policy whose query changed starts its coverage afresh (what the old query found no longer counts);
    -- only then, since this trigger fires again for its own UPDATE
    IF EXISTS (SELECT 1 FROM old_policies o JOIN new_policies n ON n.id = o.id WHERE n.query IS DISTINCT FROM o.query) THEN
        DELETE FROM public.policy_coverage c USING old_policies o JOIN new_policies n ON n.id = o.id
            WHERE c.policy_id = n.id AND n.query IS DISTINCT FROM o.query;
        UPDATE public.policies p SET covered_through = NULL FROM old_policies o JOIN new_policies n ON n.id = o.id
            WHERE p.id = n.id AND n.query IS DISTINCT FROM o.query AND p.covered_through IS NOT NULL;
    END IF;
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
        -- counted, not named: the officer closing it may not see every hold (hold list names those they see)
        RAISE EXCEPTION 'mailvault: matter % has active holds (%): release them first', OLD.name,
            (SELECT count(*) FROM public.holds h WHERE h.matter_id = OLD.id AND h.released_at IS NULL)
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

-- A held message cannot be deleted by anyone, the disposal function included: whatever deleted rows from
-- messages, at the end of the statement, none of them may be one a hold covers (judged from the deleted
-- rows, the places and the recorded query coverage, which the disposal removes only afterwards).
CREATE FUNCTION mailvault_guard_delete_message() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('mailvault.disposing', true) IS DISTINCT FROM 'on' OR current_user <> 'mailvault_owner' THEN
        RAISE EXCEPTION 'mailvault: DELETE on messages is refused: archived content leaves only through retention disposal'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END $$;
CREATE FUNCTION mailvault_refuse_held_delete() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_serial bigint;
BEGIN
    SELECT c.serial INTO v_serial FROM (SELECT array_agg(g.serial) AS s, array_agg(g.date) AS d,
                                               array_agg(g.ingested_at) AS i, array_agg(g.indexed_at) AS x FROM gone g) a,
                                       public.mailvault_holds_covering(a.s, a.d, a.i, a.x) c LIMIT 1;
    IF v_serial IS NOT NULL THEN
        RAISE EXCEPTION 'mailvault: message % is under a legal hold and cannot be deleted', v_serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION mailvault_refuse_held_delete() FROM PUBLIC;
DROP TRIGGER messages_no_delete ON messages;
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete_message();
CREATE TRIGGER messages_no_held_delete AFTER DELETE ON messages REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_held_delete();
-- Nor can a held message lose its places first (which would hide the accounts its holds are on): places
-- go only after their message.
CREATE FUNCTION mailvault_refuse_held_places_delete() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_serial bigint;
BEGIN
    SELECT c.serial INTO v_serial
    FROM (SELECT array_agg(m.serial) AS s, array_agg(m.date) AS d, array_agg(m.ingested_at) AS i, array_agg(m.indexed_at) AS x
          FROM public.messages m WHERE m.serial IN (SELECT g.message_serial FROM gone g)) a,
         (SELECT array_agg(g.message_serial) AS s, array_agg(f.account_id) AS acc
          FROM gone g JOIN public.folders f ON f.id = g.folder_id) p,
         public.mailvault_holds_covering(a.s, a.d, a.i, a.x, NULL, p.s, p.acc) c
    WHERE a.s IS NOT NULL LIMIT 1;
    IF v_serial IS NOT NULL THEN
        RAISE EXCEPTION 'mailvault: message % is under a legal hold and cannot be deleted', v_serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION mailvault_refuse_held_places_delete() FROM PUBLIC;
CREATE TRIGGER locations_no_held_delete AFTER DELETE ON locations REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_held_places_delete();
-- Disposal deletes messages while their places and recorded coverage are still there, so that the check
-- above sees every account and query that covers them; those rows go right after, in the same transaction.
ALTER TABLE locations ALTER CONSTRAINT locations_message_serial_fkey DEFERRABLE INITIALLY IMMEDIATE;

-- The one deletion path, replacing the placeholder of 004.
DROP FUNCTION mailvault_dispose(bigint, text);

-- Audit rows in a batch, one chain: the same rows mailvault_audit_write would write one by one, with one
-- look at the chain's head and one INSERT. Internal (disposal proofs).
CREATE FUNCTION mailvault_audit_write_many(p_actor text, p_via text, p_action text, p_targets text[], p_details jsonb[])
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_prev bytea;
    v_seq bigint;
    v_by text := session_user;
    v_at timestamptz;
    v_seqs bigint[] := '{}';
    v_ats timestamptz[] := '{}';
    v_prevs bytea[] := '{}';
    v_hashes bytea[] := '{}';
    v_hash bytea;
    v_same bytea;
    v_tag bytea := convert_to('mailvault-audit-2', 'UTF8');
BEGIN
    IF coalesce(cardinality(p_targets), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(727172);
    SELECT seq, hash INTO v_seq, v_prev FROM public.audit_log ORDER BY seq DESC LIMIT 1;
    v_seq := coalesce(v_seq, 0);
    v_prev := coalesce(v_prev, '\x'::bytea);
    -- the fields every row of the batch shares, as mailvault_audit_write hashes them
    v_same := public.mailvault_audit_field(p_actor) || public.mailvault_audit_field(p_via)
              || public.mailvault_audit_field(NULL) || public.mailvault_audit_field(v_by)
              || public.mailvault_audit_field(p_action);
    FOR k IN 1 .. cardinality(p_targets) LOOP
        v_seq := v_seq + 1;
        v_at := clock_timestamp();
        v_hash := sha256(v_prev || v_tag
                  || public.mailvault_audit_field(v_seq::text)
                  || public.mailvault_audit_field(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                  || v_same || public.mailvault_audit_field(p_targets[k])
                  || public.mailvault_audit_field(p_details[k]::text));
        v_seqs := v_seqs || v_seq;
        v_ats := v_ats || v_at;
        v_prevs := v_prevs || v_prev;
        v_hashes := v_hashes || v_hash;
        v_prev := v_hash;
    END LOOP;
    INSERT INTO public.audit_log (seq, at, actor, via, client, recorded_by, action, target, details, prev_hash, hash, form)
        SELECT u.seq, u.at, p_actor, p_via, NULL, v_by, p_action, u.target, u.details, u.prev, u.hash, 2
        FROM unnest(v_seqs, v_ats, p_targets, p_details, v_prevs, v_hashes) AS u(seq, at, target, details, prev, hash);
END $$;
REVOKE ALL ON FUNCTION mailvault_audit_write_many(text, text, text, text[], jsonb[]) FROM PUBLIC;

-- Removes messages whose disposal has been decided and checked, set by set: their places, the messages,
-- their blobs when nothing else refers to them; queues their removal from the index. The rows are locked
-- first: one another run holds is left alone. Returns what went, each with its proof of disposal, which
-- the caller writes into the audit chain in the same transaction (once per batch: the chain's lock, which
-- every audited access waits for, is held only from then to the commit). Internal.
CREATE FUNCTION mailvault_dispose_set(p_serials bigint[], p_reason text, p_requests bigint[])
    RETURNS TABLE (serial bigint, size bigint, policy text, proof_target text, proof jsonb)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off SET mailvault.disposing = 'on' AS $$
DECLARE
    v_serials bigint[];
    v_targets text[];
    v_details jsonb[];
BEGIN
    SELECT array_agg(x.serial ORDER BY x.serial) INTO v_serials FROM (
        SELECT m.serial FROM public.messages m WHERE m.serial = ANY (p_serials) ORDER BY m.serial FOR UPDATE SKIP LOCKED) x;
    IF v_serials IS NULL THEN
        RETURN;
    END IF;
    -- the proofs, read before anything goes
    WITH acc AS (SELECT l.message_serial, array_agg(DISTINCT a.name ORDER BY a.name) AS names
                 FROM public.locations l JOIN public.folders f ON f.id = l.folder_id JOIN public.accounts a ON a.id = f.account_id
                 WHERE l.message_serial = ANY (v_serials) GROUP BY l.message_serial),
         req AS (SELECT DISTINCT ON (r.s) r.s, r.req FROM unnest(p_serials, p_requests) AS r(s, req)
                 WHERE p_requests IS NOT NULL ORDER BY r.s)
    SELECT array_agg('message ' || m.serial ORDER BY m.serial),
           array_agg(jsonb_build_object('serial', m.serial, 'sha256', encode(m.sha256, 'hex'), 'message_id', m.message_id,
                         'date', m.date, 'size', m.size, 'accounts', to_jsonb(coalesce(acc.names, '{}')),
                         'ingested_at', m.ingested_at, 'reason', p_reason,
                         'policy', CASE WHEN p_reason = 'retention' THEN m.retain_policy END,
                         'retain_until', m.retain_until, 'erasure_request', req.req,
                         'disposed_at', now()) ORDER BY m.serial)
        INTO v_targets, v_details
        FROM public.messages m LEFT JOIN acc ON acc.message_serial = m.serial LEFT JOIN req ON req.s = m.serial
        WHERE m.serial = ANY (v_serials);
    RETURN QUERY SELECT m.serial, m.size, CASE WHEN p_reason = 'retention' THEN m.retain_policy END, t.target, t.proof
        FROM public.messages m JOIN unnest(v_targets, v_details) AS t(target, proof) ON t.target = 'message ' || m.serial
        WHERE m.serial = ANY (v_serials) ORDER BY m.serial;
    -- the messages first, while their places still say which accounts (and so which holds) they are in
    SET CONSTRAINTS locations_message_serial_fkey DEFERRED;
    WITH gone AS (DELETE FROM public.messages m WHERE m.serial = ANY (v_serials) RETURNING m.sha256)
    DELETE FROM public.blobs b USING gone WHERE b.sha256 = gone.sha256
        AND NOT EXISTS (SELECT 1 FROM public.ingest_errors e WHERE e.sha256 = gone.sha256);
    DELETE FROM public.locations l WHERE l.message_serial = ANY (v_serials);
    DELETE FROM public.hold_coverage c WHERE c.serial = ANY (v_serials);
    DELETE FROM public.policy_coverage c WHERE c.serial = ANY (v_serials);
    SET CONSTRAINTS locations_message_serial_fkey IMMEDIATE;
    INSERT INTO public.index_queue (serial, op) SELECT u, 'delete' FROM unnest(v_serials) u;
END $$;
REVOKE ALL ON FUNCTION mailvault_dispose_set(bigint[], text, bigint[]) FROM PUBLIC;

-- The messages eligible for disposal now, in serial order after p_after: past retain_until, archived at
-- least min_age ago, indexed and checked against every query, under no hold. For reports (dry runs) and
-- for the disposal itself.
CREATE FUNCTION mailvault_disposal_candidates(p_after bigint, p_limit integer)
    RETURNS TABLE (serial bigint, size bigint, policy text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_after bigint := p_after;
    v_last bigint;
    v_chunk bigint[];
    v_dates timestamptz[];
    v_ingested timestamptz[];
    v_indexed timestamptz[];
    v_got bigint;
    n bigint := 0;
    v_horizon timestamptz := public.mailvault_coverage_horizon();
    v_min_age interval;
BEGIN
    SELECT s.min_age INTO v_min_age FROM public.retention_settings s;
    SELECT max(m.serial) INTO v_last FROM public.messages m;
    -- windows of serials (the primary key's order, whatever the statistics say about retain_until), the
    -- holds checked for a whole window's expired messages at once, until the batch is full
    WHILE v_after < v_last LOOP
        SELECT array_agg(m.serial ORDER BY m.serial), array_agg(m.date ORDER BY m.serial),
               array_agg(m.ingested_at ORDER BY m.serial), array_agg(m.indexed_at ORDER BY m.serial)
            INTO v_chunk, v_dates, v_ingested, v_indexed
            FROM public.messages m
            WHERE m.serial > v_after AND m.serial <= v_after + 2000
              AND m.retain_until <= now() AND m.ingested_at <= now() - v_min_age
              AND m.indexed_at IS NOT NULL AND m.indexed_at <= v_horizon
              -- seen in a new place and not yet re-indexed: its account and folder terms are not yet in
              -- the index the query holds were evaluated on
              AND NOT EXISTS (SELECT 1 FROM public.index_queue q WHERE q.serial = m.serial AND q.op = 'reindex');
        v_after := v_after + 2000;
        CONTINUE WHEN v_chunk IS NULL;
        RETURN QUERY SELECT m.serial, m.size, m.retain_policy FROM public.messages m
            WHERE m.serial = ANY (v_chunk)
              AND m.serial NOT IN (SELECT c.serial FROM public.mailvault_holds_covering(v_chunk, v_dates, v_ingested, v_indexed) c)
            ORDER BY m.serial LIMIT p_limit - n;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        n := n + v_got;
        EXIT WHEN n >= p_limit;
    END LOOP;
END $$;

-- One batch of disposal: up to p_limit messages after serial p_after, in chunks of at most 100, until
-- p_max_ms milliseconds have passed. The shared lock is taken before the candidates are chosen, so every
-- change of holds and policies either committed before (and is seen) or waits for this transaction.
-- Returns what went (serial, size, reason, policy) and, last, a row with reason 'continue' whose serial is
-- the one to continue after (NULL when nothing is left).
CREATE FUNCTION mailvault_dispose_batch(p_after bigint, p_limit integer, p_max_ms integer)
    RETURNS TABLE (serial bigint, size bigint, reason text, policy text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    v_start timestamptz := clock_timestamp();
    v_cands bigint[];
    v_chunk bigint[];
    v_last bigint := NULL;
    v_targets text[] := '{}';
    v_proofs jsonb[] := '{}';
    d record;
    k integer := 1;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
        RAISE EXCEPTION 'mailvault: a disposal batch holds 1 to 10000 messages' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(727173);
    SELECT array_agg(c.serial ORDER BY c.serial) INTO v_cands FROM public.mailvault_disposal_candidates(p_after, p_limit) c;
    WHILE v_cands IS NOT NULL AND k <= cardinality(v_cands) LOOP
        v_chunk := v_cands[k : k + 99];
        FOR d IN SELECT * FROM public.mailvault_dispose_set(v_chunk, 'retention', NULL) LOOP
            serial := d.serial; size := d.size; reason := 'retention'; policy := d.policy;
            RETURN NEXT;
            v_targets := v_targets || d.proof_target;
            v_proofs := v_proofs || d.proof;
        END LOOP;
        v_last := v_chunk[cardinality(v_chunk)];
        k := k + 100;
        EXIT WHEN clock_timestamp() - v_start > make_interval(secs => coalesce(p_max_ms, 500) / 1000.0);
    END LOOP;
    PERFORM public.mailvault_audit_write_many(session_user, 'retention', 'dispose', v_targets, v_proofs);
    serial := v_last; size := NULL; reason := 'continue'; policy := NULL;
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
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
DECLARE
    r record;
    d record;
    v_holds text[];
    v_locked text[];
    v_targets text[] := '{}';
    v_proofs jsonb[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock_shared(727173);
    FOR r IN SELECT i.request_id, i.serial FROM public.erasure_items i JOIN public.erasure_requests q ON q.id = i.request_id
             WHERE q.status = 'approved' AND i.state = 'pending' ORDER BY i.request_id, i.serial
             LIMIT p_limit FOR UPDATE OF i SKIP LOCKED LOOP
        v_holds := public.mailvault_holds_of(r.serial);
        v_locked := public.mailvault_locked_policies_of(r.serial);
        serial := r.serial; request := r.request_id; size := NULL; note := NULL;
        IF cardinality(v_holds) > 0 OR cardinality(v_locked) > 0 THEN
            state := 'refused';
            note := CASE WHEN cardinality(v_holds) > 0 THEN 'under hold ' || array_to_string(v_holds, ', ')
                         ELSE 'kept by locked policy ' || array_to_string(v_locked, ', ') END;
        ELSE
            SELECT * INTO d FROM public.mailvault_dispose_set(ARRAY[r.serial], 'erasure', ARRAY[r.request_id]);
            -- a message another transaction holds locked just now stays pending for the next run
            CONTINUE WHEN d.serial IS NULL AND EXISTS (SELECT 1 FROM public.messages m WHERE m.serial = r.serial);
            state := 'erased';
            size := d.size;
            note := CASE WHEN d.size IS NULL THEN 'already gone' END;
            IF d.proof IS NOT NULL THEN
                v_targets := v_targets || d.proof_target;
                v_proofs := v_proofs || d.proof;
            END IF;
        END IF;
        UPDATE public.erasure_items i SET state = mailvault_erase_batch.state, note = mailvault_erase_batch.note
            WHERE i.request_id = r.request_id AND i.serial = r.serial;
        RETURN NEXT;
    END LOOP;
    PERFORM public.mailvault_audit_write_many(session_user, 'retention', 'dispose', v_targets, v_proofs);
    UPDATE public.erasure_requests q SET status = 'done', completed_at = now()
        WHERE q.status = 'approved'
          AND NOT EXISTS (SELECT 1 FROM public.erasure_items i WHERE i.request_id = q.id AND i.state = 'pending');
END $$;
REVOKE ALL ON FUNCTION mailvault_erase_batch(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_erase_batch(integer) TO mailvault_retention;

-- An erasure request, made by the service for an officer: the messages their query found, each checked
-- now; those under a hold or a locked policy are refused with the reason. Returns the request's id.
CREATE FUNCTION mailvault_erasure_request(p_officer text, p_query text, p_reason text, p_serials bigint[]) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
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
    INSERT INTO public.erasure_items (request_id, serial, sha256, state, note, account_ids)
        SELECT v_id, m.serial, m.sha256,
               CASE WHEN cardinality(h.holds) > 0 OR cardinality(l.locked) > 0 THEN 'refused' ELSE 'pending' END,
               CASE WHEN cardinality(h.holds) > 0 THEN 'under hold ' || array_to_string(h.holds, ', ')
                    WHEN cardinality(l.locked) > 0 THEN 'kept by locked policy ' || array_to_string(l.locked, ', ') END,
               a.ids
        FROM public.messages m,
             LATERAL (SELECT ARRAY(SELECT DISTINCT f.account_id FROM public.locations pl JOIN public.folders f
                                   ON f.id = pl.folder_id WHERE pl.message_serial = m.serial ORDER BY 1) AS ids) a,
             LATERAL (SELECT public.mailvault_holds_of(m.serial) AS holds) h,
             LATERAL (SELECT public.mailvault_locked_policies_of(m.serial) AS locked) l
        WHERE m.serial = ANY (p_serials)
          -- only what the officer may see (one of its accounts in their scope), whatever the service passed
          AND EXISTS (SELECT 1 FROM public.officers o WHERE o.name = p_officer
                      AND (o.all_accounts OR a.ids && ARRAY(SELECT oa.account_id FROM public.officer_accounts oa
                                                             WHERE oa.officer = o.name)));
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
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
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
    -- the approver answers for every message: they must see every account the request's messages were in
    -- when asked for, and every account they are in now (a copy may have arrived since)
    IF EXISTS (SELECT 1 FROM public.officers o, public.erasure_items i
               WHERE o.name = p_officer AND NOT o.all_accounts AND i.request_id = p_id
                 AND NOT (i.account_ids || ARRAY(SELECT f.account_id FROM public.locations l
                                                JOIN public.folders f ON f.id = l.folder_id
                                                WHERE l.message_serial = i.serial))
                         <@ ARRAY(SELECT oa.account_id FROM public.officer_accounts oa WHERE oa.officer = o.name)) THEN
        RAISE EXCEPTION 'mailvault: erasure request % names messages in accounts % does not see: an admin who sees them approves it',
            p_id, p_officer USING ERRCODE = 'insufficient_privilege';
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
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off AS $$
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
            PERFORM pg_advisory_xact_lock_shared(727173);
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
REVOKE ALL ON FUNCTION mailvault_held(bigint), mailvault_held_among(bigint[]), mailvault_holds_of(bigint),
    mailvault_locked_policies_of(bigint), mailvault_holds_covering(bigint[], timestamptz[], timestamptz[], timestamptz[], bigint,
    bigint[], integer[]), mailvault_retention_recompute(bigint[]), mailvault_policies_recompute(), mailvault_coverage_horizon(),
    mailvault_policy_covers(policies, bigint), mailvault_policy_places(policies, bigint), mailvault_base_date(bigint, timestamptz,
    timestamptz), mailvault_list_pattern_regex(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_list_pattern_regex(text) TO mailvault_web, mailvault_retention, mailvault_indexer,
    mailvault_ingest;
GRANT EXECUTE ON FUNCTION mailvault_held(bigint), mailvault_held_among(bigint[]), mailvault_holds_of(bigint), mailvault_locked_policies_of(bigint),
    mailvault_holds_covering(bigint[], timestamptz[], timestamptz[], timestamptz[], bigint, bigint[], integer[])
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
GRANT EXECUTE ON FUNCTION mailvault_policy_covers(policies, bigint), mailvault_policy_places(policies, bigint),
    mailvault_base_date(bigint, timestamptz, timestamptz) TO mailvault_web;
