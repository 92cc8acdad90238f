-- 数据开放 (the openness module): datasets a department opens to society — from a registry,
-- de-identified and checked for k-anonymity, or from an uploaded file checked against a
-- declared schema — each version's rows kept, each publication an entry on the `public`
-- ledger; applications for conditional datasets and the API keys they grant; usage by day;
-- and 数据需求, the datasets people ask for and the departments' public answers.
CREATE TABLE open_datasets (
    id              TEXT PRIMARY KEY,
    -- the dataset's name in URLs and to CKAN clients: lower-case letters, digits, - and _
    name            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    department_id   TEXT NOT NULL REFERENCES departments(id),
    region_path     TEXT NOT NULL,
    -- 主题分类, as documents use it
    theme           TEXT NOT NULL,
    -- unconditional (无条件开放) or conditional (有条件开放)
    open_level      TEXT NOT NULL,
    -- how often it is updated: daily, weekly, monthly, quarterly, yearly or irregular
    frequency       TEXT NOT NULL,
    licence         TEXT NOT NULL,
    -- JSON array of keywords
    tags            TEXT NOT NULL,
    -- file or registry
    source          TEXT NOT NULL,
    -- JSON: the columns (name, title, type, required, code values)
    columns         TEXT NOT NULL,
    -- for a registry dataset: the registry's code, the rules (JSON) and the k required
    registry_code   TEXT,
    rules           TEXT,
    k_required      BIGINT,
    -- the version in force, its rows and the k it reached (registry datasets)
    version         BIGINT NOT NULL,
    row_count       BIGINT NOT NULL,
    k_reached       BIGINT,
    published_at    BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- when a registry dataset is next refreshed
    refresh_due_at  BIGINT
);
CREATE INDEX open_datasets_department ON open_datasets(department_id);
CREATE INDEX open_datasets_refresh ON open_datasets(refresh_due_at);

-- Every version of a dataset, with the SHA-256 of its CSV and its entry on the ledger.
CREATE TABLE open_dataset_versions (
    dataset_id   TEXT NOT NULL REFERENCES open_datasets(id),
    version      BIGINT NOT NULL,
    row_count    BIGINT NOT NULL,
    k_reached    BIGINT,
    sha256       TEXT NOT NULL,
    ledger_index BIGINT NOT NULL,
    note         TEXT,
    -- the officer, or none when the schedule refreshed it
    published_by TEXT REFERENCES accounts(id),
    published_at BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

-- The rows of each version, as JSON objects keyed by column name.
CREATE TABLE open_rows (
    dataset_id TEXT NOT NULL,
    version    BIGINT NOT NULL,
    row_no     BIGINT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version, row_no)
);

-- Applications for a conditional dataset, and the API key an approval grants. Only the
-- key's SHA-256 is kept; the applicant sees the key once.
CREATE TABLE open_access (
    id             TEXT PRIMARY KEY,
    dataset_id     TEXT NOT NULL REFERENCES open_datasets(id),
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    purpose        TEXT NOT NULL,
    -- pending, approved, refused or revoked
    state          TEXT NOT NULL,
    decision_note  TEXT,
    decided_by     TEXT REFERENCES accounts(id),
    decided_at     BIGINT,
    key_sha256     TEXT UNIQUE,
    calls_per_minute BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX open_access_dataset ON open_access(dataset_id, state);
CREATE INDEX open_access_account ON open_access(account_id);

-- Calls made with a key, per minute: the rate limit every node enforces alike.
CREATE TABLE open_key_calls (
    access_id TEXT NOT NULL,
    minute    BIGINT NOT NULL,
    calls     BIGINT NOT NULL,
    PRIMARY KEY (access_id, minute)
);

-- Views, downloads and API calls of each dataset, per China day.
CREATE TABLE open_usage (
    dataset_id TEXT NOT NULL,
    day        TEXT NOT NULL,
    views      BIGINT NOT NULL,
    downloads  BIGINT NOT NULL,
    api_calls  BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, day)
);

-- 数据需求: a resident or enterprise asks for a dataset; the department answers publicly.
CREATE TABLE open_data_requests (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    department_id TEXT NOT NULL REFERENCES departments(id),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    -- open or answered
    state         TEXT NOT NULL,
    answer        TEXT,
    -- the dataset that meets the request, when there is one
    dataset_id    TEXT REFERENCES open_datasets(id),
    answered_by   TEXT REFERENCES accounts(id),
    answered_at   BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX open_data_requests_department ON open_data_requests(department_id, created_at);

INSERT INTO permissions (code, description) VALUES
    ('opendata.publish', 'Open the own department''s datasets, decide applications for them and answer 数据需求');

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('data_officer', 'opendata.publish');
