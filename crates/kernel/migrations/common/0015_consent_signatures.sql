-- GovStack Consent signatures: an individual's Ed25519 signature over a consent record's
-- serialised form. `verified` is set once the signature checked against its key; the record
-- is then `signed` (until it changes again).
CREATE TABLE consent_signatures (
    id         TEXT PRIMARY KEY,
    record_id  TEXT NOT NULL REFERENCES consent_records(id),
    body       TEXT NOT NULL,
    verified   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX consent_signatures_record ON consent_signatures (record_id, created_at);
