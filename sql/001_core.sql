-- 001: the archive's core tables: accounts, folders, content-addressed blobs, messages, provenance.

CREATE TABLE accounts (
    id              serial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
    host            text NOT NULL CHECK (host <> ''),
    port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls             text NOT NULL CHECK (tls IN ('imaps', 'starttls')),
    username        text NOT NULL CHECK (username <> ''),
    auth            text NOT NULL DEFAULT 'plain' CHECK (auth IN ('plain', 'login', 'xoauth2', 'oauthbearer')),
    -- a reference to the secret (file:, env:, cmd:), never the secret itself
    secret_ref      text NOT NULL CHECK (secret_ref ~ '^(file|env|cmd):.'),
    ca_file         text,
    poll_interval   integer NOT NULL DEFAULT 300 CHECK (poll_interval > 0),
    include_patterns text[] NOT NULL DEFAULT '{}',
    exclude_patterns text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    -- several pollers share the work: one holds an account's lease at a time
    lease_owner     text,
    lease_expires   timestamptz,
    next_poll       timestamptz NOT NULL DEFAULT now(),
    failures        integer NOT NULL DEFAULT 0,
    last_success    timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE folders (
    id              bigserial PRIMARY KEY,
    account_id      integer NOT NULL REFERENCES accounts(id) ON DELETE RESTRICT,
    name            text NOT NULL,              -- the mailbox name exactly as the server lists it
    special_use     text,
    uidvalidity     bigint,
    last_uid        bigint NOT NULL DEFAULT 0,  -- every UID <= last_uid of this uidvalidity is archived
    uidnext         bigint,                     -- UIDNEXT when the folder was last fully synced
    highestmodseq   numeric(20, 0),
    last_sync       timestamptz,
    UNIQUE (account_id, name)
);

-- UIDVALIDITY resets are kept as history: the old generation's provenance stays valid.
CREATE TABLE uidvalidity_changes (
    folder_id       bigint NOT NULL REFERENCES folders(id),
    old_uidvalidity bigint NOT NULL,
    new_uidvalidity bigint NOT NULL,
    old_last_uid    bigint NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);

-- Raw bytes, exactly as the server sent them, once per SHA-256.
CREATE TABLE blobs (
    sha256          bytea PRIMARY KEY CHECK (length(sha256) = 32),
    size            bigint NOT NULL CHECK (size >= 0),
    raw             bytea NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (length(raw) = size)
);
ALTER TABLE blobs ALTER COLUMN raw SET COMPRESSION lz4;

CREATE TABLE messages (
    serial          bigserial PRIMARY KEY,      -- the archive's own monotonic number; the Xapian docid
    sha256          bytea NOT NULL UNIQUE REFERENCES blobs(sha256),
    message_id      text,
    date            timestamptz,
    from_addr       text,
    to_addr         text,
    cc_addr         text,
    subject         text,
    size            bigint NOT NULL,
    has_attachments boolean,                    -- known once the indexer has parsed the MIME tree
    header_error    text,                       -- why parsed fields are missing, if they are
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    retain_until    timestamptz,
    indexed_at      timestamptz
);
CREATE INDEX messages_unindexed ON messages (serial) WHERE indexed_at IS NULL;
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_date ON messages (date);

-- Provenance: every place a copy was seen.
CREATE TABLE locations (
    id              bigserial PRIMARY KEY,
    message_serial  bigint NOT NULL REFERENCES messages(serial),
    folder_id       bigint NOT NULL REFERENCES folders(id),
    uidvalidity     bigint NOT NULL,
    uid             bigint NOT NULL,
    internaldate    timestamptz,
    flags           text[] NOT NULL DEFAULT '{}',   -- at first sight
    first_seen      timestamptz NOT NULL DEFAULT now(),
    expunged_at     timestamptz,
    UNIQUE (folder_id, uidvalidity, uid)
);
CREATE INDEX locations_message ON locations (message_serial);

-- What could not be archived, and why: never a silent drop.
CREATE TABLE ingest_errors (
    id              bigserial PRIMARY KEY,
    account_id      integer NOT NULL REFERENCES accounts(id),
    folder_id       bigint REFERENCES folders(id),
    uidvalidity     bigint,
    uid             bigint,
    size            bigint,
    reason          text NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_errors_account ON ingest_errors (account_id);

-- Immutability, enforced by the database for every role (owners included).
CREATE FUNCTION mailvault_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mailvault: % on % is refused: archived content is immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER blobs_immutable BEFORE UPDATE ON blobs
    FOR EACH ROW EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER blobs_no_truncate BEFORE TRUNCATE ON blobs
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();
CREATE TRIGGER locations_no_truncate BEFORE TRUNCATE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION mailvault_refuse_change();

-- Messages: only the lifecycle columns (indexing, retention) may ever change.
CREATE FUNCTION mailvault_messages_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.serial, NEW.sha256, NEW.message_id, NEW.date, NEW.from_addr, NEW.to_addr, NEW.cc_addr,
        NEW.subject, NEW.size, NEW.header_error, NEW.ingested_at)
       IS DISTINCT FROM
       (OLD.serial, OLD.sha256, OLD.message_id, OLD.date, OLD.from_addr, OLD.to_addr, OLD.cc_addr,
        OLD.subject, OLD.size, OLD.header_error, OLD.ingested_at) THEN
        RAISE EXCEPTION 'mailvault: archived message fields are immutable (serial %)', OLD.serial
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_immutable BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION mailvault_messages_guard();

-- Locations: provenance is fixed; only the expunge time may be recorded later.
CREATE FUNCTION mailvault_locations_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.message_serial, NEW.folder_id, NEW.uidvalidity, NEW.uid, NEW.internaldate, NEW.flags,
        NEW.first_seen) IS DISTINCT FROM
       (OLD.id, OLD.message_serial, OLD.folder_id, OLD.uidvalidity, OLD.uid, OLD.internaldate, OLD.flags,
        OLD.first_seen) THEN
        RAISE EXCEPTION 'mailvault: provenance is immutable (location %)', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER locations_immutable BEFORE UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION mailvault_locations_guard();
