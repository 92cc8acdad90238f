-- Public ledgers (the openness module): community finance (社区财务公开, a community's income
-- and spending month by month) and public-resource transactions (公共资源交易: tender notices,
-- bid openings, awards, contracts), each record an entry on the `public` ledger. Records are
-- never changed: a correction is a new record naming the one it corrects.
CREATE TABLE public_records (
    id            TEXT PRIMARY KEY,
    -- community_finance or transaction
    kind          TEXT NOT NULL,
    -- the community's region code, or the project's code
    subject_code  TEXT NOT NULL,
    subject_name  TEXT NOT NULL,
    -- the month (YYYY-MM) of a statement, or the stage of a transaction
    period        TEXT NOT NULL,
    region_path   TEXT NOT NULL,
    -- the department that published a transaction's record
    department_id TEXT REFERENCES departments(id),
    -- the record as published: canonical JSON, whose SHA-256 the ledger entry carries
    body          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    ledger_index  BIGINT NOT NULL,
    corrects      TEXT REFERENCES public_records(id),
    published_by  TEXT NOT NULL REFERENCES accounts(id),
    published_at  BIGINT NOT NULL
);
CREATE INDEX public_records_subject ON public_records(kind, subject_code, published_at);
CREATE UNIQUE INDEX public_records_correction ON public_records(corrects);

INSERT INTO permissions (code, description) VALUES
    ('ledger.community_finance', 'Publish the own community''s monthly income and spending (社区财务公开)'),
    ('ledger.transactions', 'Publish public-resource transactions of the own department (公共资源交易)');

INSERT INTO roles (code, name_zh, name_en, scope, clearance, duty) VALUES
    ('trading_officer', '公共资源交易专员', 'Public-resource trading officer', 'jurisdiction', 1, NULL);

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('community_worker', 'ledger.community_finance'),
    ('trading_officer', 'ledger.transactions'), ('trading_officer', 'organisation.read');
