-- 004: integrity. The database itself checks that every blob's key is the SHA-256 of its bytes; the
-- poller may insert only the columns it owns and moves a folder's watermark only through functions that
-- refuse to go back or past what it stored; nothing deletes archived content except the disposal
-- function; folder names are kept exactly as the server sends them; secrets are named entries of the
-- local configuration. Tables change hands to a NOLOGIN owner role at the end of `mailvault init`.
--
-- Threat model: against the programs' roles and officers these rules are prevention. The superuser and
-- members of mailvault_owner can disable triggers or redefine functions: against them the archive only
-- detects (blob hashes by `mailvault verify`, the hash-chained audit log).

-- The owner of every table and function: a role no program logs in as.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mailvault_owner') THEN
        CREATE ROLE mailvault_owner NOLOGIN;
    END IF;
END $$;
GRANT mailvault_owner TO CURRENT_USER;
GRANT USAGE, CREATE ON SCHEMA public TO mailvault_owner;

-- Only mailvault's roles connect, and nobody but the administrator makes temporary objects: a temporary
-- table or view may shadow a table's name for whoever looks names up without pg_temp last, so functions
-- that run with the owner's rights (SECURITY DEFINER) all set search_path = pg_catalog, public, pg_temp.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailvault_ingest, mailvault_indexer, mailvault_retention, '
                   'mailvault_officer', current_database());
END $$;
ALTER FUNCTION mailvault_may_see(integer) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION mailvault_audit(text, text, jsonb) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION mailvault_refuse_change() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION mailvault_messages_guard() SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION mailvault_locations_guard() SET search_path = pg_catalog, public, pg_temp;
REVOKE ALL ON FUNCTION mailvault_refuse_change(), mailvault_messages_guard(), mailvault_locations_guard() FROM PUBLIC;

-- Content addressing, checked by the database: a blob is stored only under the hash of its bytes.
ALTER TABLE blobs ADD CONSTRAINT blobs_sha256_is_hash_of_raw CHECK (sha256 = sha256(raw));

-- Folders: the server's exact name (bytes, for the protocol) and the name people read (UTF-8).
ALTER TABLE folders ADD COLUMN server_name bytea;
UPDATE folders SET server_name = convert_to(name, 'UTF8');
ALTER TABLE folders ALTER COLUMN server_name SET NOT NULL;
ALTER TABLE folders DROP CONSTRAINT folders_account_id_name_key;
ALTER TABLE folders ADD CONSTRAINT folders_account_server_name UNIQUE (account_id, server_name);
CREATE INDEX folders_account_name ON folders (account_id, name);
COMMENT ON COLUMN folders.name IS 'the name people read: modified UTF-7 decoded to UTF-8';
COMMENT ON COLUMN folders.server_name IS 'the name exactly as the server sends it';
ALTER TABLE folders
    ADD COLUMN delimiter text,                          -- the hierarchy delimiter LIST gave, if any
    ADD COLUMN selectable boolean NOT NULL DEFAULT true, -- false for \Noselect and \NonExistent
    ADD COLUMN selected boolean NOT NULL DEFAULT true,  -- chosen by the account's include/exclude patterns
    ADD COLUMN listed_at timestamptz,                   -- when LIST last returned it
    ADD COLUMN last_error text,                         -- why its last sync failed (NULL after a success)
    ADD COLUMN last_error_at timestamptz;

-- Secrets are named [secret NAME] entries of mailvault.conf, bound to the host and user they may be sent
-- to. Existing accounts take their own name; their old reference is kept only to tell the
-- administrator which entry to write (the poller never reads it).
ALTER TABLE accounts ADD COLUMN secret_name text, ADD COLUMN legacy_secret_ref text;
UPDATE accounts SET secret_name = name, legacy_secret_ref = secret_ref;
ALTER TABLE accounts ALTER COLUMN secret_name SET NOT NULL;
ALTER TABLE accounts ADD CONSTRAINT accounts_secret_name_check
    CHECK (secret_name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$');
ALTER TABLE accounts DROP COLUMN secret_ref;

-- What could not be archived: what kind of problem, the SHA-256 of bytes kept aside (a server's second
-- body for one UID), and whether the poller tries again (a message the server would not send; one over
-- the size limit, once the limit allows it).
-- An error is resolved once its UID has a location; the poller never updates or deletes a row.
ALTER TABLE ingest_errors ADD COLUMN sha256 bytea, ADD COLUMN retry boolean NOT NULL DEFAULT false,
    ADD COLUMN kind text NOT NULL DEFAULT 'other'
        CHECK (kind IN ('oversize', 'no-body', 'gone', 'second-body', 'refused', 'other'));
UPDATE ingest_errors SET kind = 'oversize' WHERE reason LIKE '%exceeds max_message_bytes%';
UPDATE ingest_errors SET kind = 'gone' WHERE reason LIKE 'expunged from the server%';
CREATE INDEX ingest_errors_folder_uid ON ingest_errors (folder_id, uidvalidity, uid);

-- The poller: only the columns it owns, no lifecycle columns, watermarks through functions.
REVOKE ALL ON accounts, folders, uidvalidity_changes, blobs, messages, locations, ingest_errors
    FROM mailvault_ingest;
GRANT SELECT (id, name, host, port, tls, username, auth, secret_name, ca_file, poll_interval, include_patterns,
              exclude_patterns, enabled, lease_owner, lease_expires, next_poll, failures, last_success, last_error,
              last_error_at)
    ON accounts TO mailvault_ingest;
GRANT UPDATE (lease_owner, lease_expires, next_poll, failures, last_success, last_error, last_error_at)
    ON accounts TO mailvault_ingest;
GRANT SELECT ON folders TO mailvault_ingest;
GRANT INSERT (account_id, server_name, name, delimiter, special_use, selectable, selected, listed_at)
    ON folders TO mailvault_ingest;
GRANT UPDATE (name, delimiter, special_use, selectable, selected, listed_at, uidnext, highestmodseq, last_sync,
              last_error, last_error_at)
    ON folders TO mailvault_ingest;
GRANT INSERT (sha256, size, raw) ON blobs TO mailvault_ingest;
GRANT SELECT (sha256) ON blobs TO mailvault_ingest;
GRANT INSERT (sha256, message_id, date, from_addr, to_addr, cc_addr, subject, size, header_error)
    ON messages TO mailvault_ingest;
GRANT SELECT (serial, sha256) ON messages TO mailvault_ingest;
GRANT INSERT (message_serial, folder_id, uidvalidity, uid, internaldate, flags) ON locations TO mailvault_ingest;
GRANT SELECT (id, message_serial, folder_id, uidvalidity, uid) ON locations TO mailvault_ingest;
GRANT INSERT (account_id, folder_id, uidvalidity, uid, size, reason, sha256, retry, kind)
    ON ingest_errors TO mailvault_ingest;
GRANT SELECT (id, account_id, folder_id, uidvalidity, uid, size, retry, kind) ON ingest_errors TO mailvault_ingest;

-- A new generation of a folder (first sight, or a new UIDVALIDITY): the one way its watermark goes back
-- to 0, and the change is kept in uidvalidity_changes. True if the generation changed.
CREATE FUNCTION mailvault_folder_generation(p_folder bigint, p_uidvalidity bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    f public.folders%ROWTYPE;
BEGIN
    IF p_uidvalidity IS NULL OR p_uidvalidity < 1 OR p_uidvalidity > 4294967295 THEN
        RAISE EXCEPTION 'mailvault: % is not a UIDVALIDITY', p_uidvalidity USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO f FROM public.folders WHERE id = p_folder FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailvault: no folder %', p_folder USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF f.uidvalidity = p_uidvalidity THEN
        RETURN false;
    END IF;
    IF f.uidvalidity IS NOT NULL THEN
        INSERT INTO public.uidvalidity_changes (folder_id, old_uidvalidity, new_uidvalidity, old_last_uid)
        VALUES (p_folder, f.uidvalidity, p_uidvalidity, f.last_uid);
    END IF;
    UPDATE public.folders SET uidvalidity = p_uidvalidity, last_uid = 0, uidnext = NULL WHERE id = p_folder;
    RETURN true;
END $$;

-- Moves a folder's watermark (every UID at or below it is archived or recorded) forward, only to a UID
-- this very transaction stored a location or an ingest error for: never back, never past the batch.
-- (first_seen and occurred_at default to now(), the transaction's start, and the poller cannot set them.)
CREATE FUNCTION mailvault_folder_advance(p_folder bigint, p_uidvalidity bigint, p_last_uid bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    f public.folders%ROWTYPE;
BEGIN
    SELECT * INTO f FROM public.folders WHERE id = p_folder FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailvault: no folder %', p_folder USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF f.uidvalidity IS DISTINCT FROM p_uidvalidity THEN
        RAISE EXCEPTION 'mailvault: folder % is at UIDVALIDITY %, not %', p_folder, f.uidvalidity, p_uidvalidity
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_last_uid < f.last_uid THEN
        RAISE EXCEPTION 'mailvault: the watermark of folder % cannot move back from % to %', p_folder, f.last_uid,
            p_last_uid USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_last_uid = f.last_uid THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.locations l WHERE l.folder_id = p_folder AND l.uidvalidity = p_uidvalidity
                   AND l.uid = p_last_uid AND l.first_seen = now())
       AND NOT EXISTS (SELECT 1 FROM public.ingest_errors e WHERE e.folder_id = p_folder AND e.uidvalidity = p_uidvalidity
                       AND e.uid = p_last_uid AND e.occurred_at = now()) THEN
        RAISE EXCEPTION 'mailvault: the watermark of folder % may only advance to a UID this transaction stored (not %)',
            p_folder, p_last_uid USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE public.folders SET last_uid = p_last_uid WHERE id = p_folder;
END $$;
REVOKE ALL ON FUNCTION mailvault_folder_generation(bigint, bigint), mailvault_folder_advance(bigint, bigint, bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_folder_generation(bigint, bigint), mailvault_folder_advance(bigint, bigint, bigint)
    TO mailvault_ingest;

-- The poller's lease, renewed inside each batch's transaction: a poller that lost it (another one took
-- the account over) gets an error, so its batch is never committed.
CREATE FUNCTION mailvault_lease_renew(p_account integer, p_owner text, p_seconds integer) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.accounts SET lease_expires = now() + make_interval(secs => p_seconds)
        WHERE id = p_account AND lease_owner = p_owner;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailvault: another poller holds the lease of account % now', p_account
            USING ERRCODE = 'lock_not_available';
    END IF;
END $$;
REVOKE ALL ON FUNCTION mailvault_lease_renew(integer, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_lease_renew(integer, text, integer) TO mailvault_ingest;

-- Deletion: refused on archived content for every role, the owner included, except inside the disposal
-- function, which runs as the owner with mailvault.disposing set for its own duration. Anyone may SET
-- that variable, but only a SECURITY DEFINER function of the owner runs its DELETE as mailvault_owner.
CREATE FUNCTION mailvault_guard_delete() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('mailvault.disposing', true) = 'on' AND current_user = 'mailvault_owner' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'mailvault: DELETE on % is refused: archived content leaves only through retention disposal',
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER locations_no_delete BEFORE DELETE ON locations FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
-- What could not be archived, and the UIDVALIDITY history, are records too: never changed, never removed.
CREATE TRIGGER ingest_errors_immutable BEFORE UPDATE ON ingest_errors
    FOR EACH ROW EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER ingest_errors_no_delete BEFORE DELETE ON ingest_errors
    FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER ingest_errors_no_truncate BEFORE TRUNCATE ON ingest_errors
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER uidvalidity_changes_immutable BEFORE UPDATE ON uidvalidity_changes
    FOR EACH ROW EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER uidvalidity_changes_no_delete BEFORE DELETE ON uidvalidity_changes
    FOR EACH ROW EXECUTE FUNCTION mailvault_guard_delete();
CREATE TRIGGER uidvalidity_changes_no_truncate BEFORE TRUNCATE ON uidvalidity_changes
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
REVOKE ALL ON FUNCTION mailvault_guard_delete() FROM PUBLIC;

-- The one deletion path. Retention and legal holds fill it in a later version; until then it refuses
-- everything, so no message can leave the archive at all.
CREATE FUNCTION mailvault_dispose(p_serial bigint, p_reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET mailvault.disposing = 'on' AS $$
BEGIN
    RAISE EXCEPTION 'mailvault: disposal is not available in this version: message % is kept (%)', p_serial,
        coalesce(p_reason, 'no reason given') USING ERRCODE = 'insufficient_privilege';
END $$;
REVOKE ALL ON FUNCTION mailvault_dispose(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mailvault_dispose(bigint, text) TO mailvault_retention;

-- The index never drifts: a message seen in a new place is queued for re-indexing in the same
-- transaction as the place, so its account and folder terms follow (a message stored by this very
-- transaction is indexed whole anyway). The queue replaces the indexer's watermark on locations.id,
-- which missed locations committed out of id order.
CREATE FUNCTION mailvault_location_reindex() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.index_queue (serial, op)
        SELECT DISTINCT n.message_serial, 'reindex' FROM new_locations n
        JOIN public.messages m ON m.serial = n.message_serial WHERE m.ingested_at <> now();
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION mailvault_location_reindex() FROM PUBLIC;
CREATE TRIGGER locations_reindex AFTER INSERT ON locations REFERENCING NEW TABLE AS new_locations
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_location_reindex();
DROP TABLE indexer_state;
-- messages the old watermark may have missed: every one seen in more than one place
INSERT INTO index_queue (serial, op)
    SELECT message_serial, 'reindex' FROM locations GROUP BY message_serial HAVING count(*) > 1;
CREATE INDEX index_queue_serial ON index_queue (serial);
GRANT UPDATE (indexed_at) ON messages TO mailvault_indexer;
