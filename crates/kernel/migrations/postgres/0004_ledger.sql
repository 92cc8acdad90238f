-- The ledger: append-only logs, each an RFC 6962 Merkle tree with signed checkpoints.

-- One row per log; its size is the next index, and updating it is the sequencing lock.
CREATE TABLE ledger_logs (
    name TEXT PRIMARY KEY,
    size BIGINT NOT NULL
);
INSERT INTO ledger_logs (name, size) VALUES ('audit', 0), ('certificates', 0), ('public', 0);

CREATE TABLE ledger_entries (
    log       TEXT NOT NULL REFERENCES ledger_logs(name),
    idx       BIGINT NOT NULL,
    entry     BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL,
    -- projections of the entry for queries; `ledger verify` checks them against it
    at        BIGINT NOT NULL,
    action    TEXT NOT NULL,
    actor     TEXT,
    subject   TEXT,
    PRIMARY KEY (log, idx)
);
CREATE INDEX ledger_entries_action ON ledger_entries(log, action, idx);
CREATE INDEX ledger_entries_subject ON ledger_entries(log, subject, idx);
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$;
CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Hashes of complete subtrees of 256^level entries (level >= 1): the upper tile levels.
CREATE TABLE ledger_hashes (
    log   TEXT NOT NULL,
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (log, level, idx)
);

CREATE TABLE ledger_checkpoints (
    log        TEXT NOT NULL,
    size       BIGINT NOT NULL,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (log, size)
);

-- Witness cosignatures (C2SP tlog-cosignature lines) on checkpoints.
CREATE TABLE ledger_cosignatures (
    log       TEXT NOT NULL,
    size      BIGINT NOT NULL,
    witness   TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (log, size, witness)
);

-- Checkpoints and stored subtree hashes are append-only too (verify still catches changes).
CREATE TRIGGER ledger_checkpoints_no_change BEFORE UPDATE OR DELETE ON ledger_checkpoints
FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_hashes_no_change BEFORE UPDATE OR DELETE ON ledger_hashes
FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
