-- 002: one database role per program, each with the least privilege its job needs (Postfix's model).
-- Login roles are made members of these, e.g. CREATE ROLE poller LOGIN IN ROLE mailvault_ingest.

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['mailvault_ingest', 'mailvault_indexer', 'mailvault_retention',
                             'mailvault_officer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;

-- The poller: reads its accounts, keeps its own lease and sync state, may only INSERT content.
GRANT SELECT ON accounts TO mailvault_ingest;
GRANT UPDATE (lease_owner, lease_expires, next_poll, failures, last_success, last_error, last_error_at)
    ON accounts TO mailvault_ingest;
GRANT SELECT, INSERT ON folders TO mailvault_ingest;
GRANT UPDATE (special_use, uidvalidity, last_uid, uidnext, highestmodseq, last_sync) ON folders TO mailvault_ingest;
GRANT INSERT ON uidvalidity_changes, blobs, messages, locations, ingest_errors TO mailvault_ingest;
GRANT SELECT (sha256) ON blobs TO mailvault_ingest;
GRANT SELECT (serial, sha256) ON messages TO mailvault_ingest;
GRANT SELECT (id, folder_id, uidvalidity, uid) ON locations TO mailvault_ingest;
GRANT USAGE ON SEQUENCE folders_id_seq, messages_serial_seq, locations_id_seq, ingest_errors_id_seq
    TO mailvault_ingest;

-- The indexer: reads messages and raw bytes, marks them indexed.
GRANT SELECT ON blobs, messages, locations, folders, accounts TO mailvault_indexer;
GRANT UPDATE (indexed_at, has_attachments) ON messages TO mailvault_indexer;

-- Retention: reads what it must decide on; deletion comes with the retention migrations.
GRANT SELECT ON messages, locations, folders, accounts TO mailvault_retention;
GRANT UPDATE (retain_until) ON messages TO mailvault_retention;
