-- Cross-department data exchange (issue 5): base registries with their resource catalog,
-- sharing agreements, the systems that call the exchange, and consent (GovStack Consent).
-- Owned by the `exchange` module.

INSERT INTO permissions (code, description) VALUES
    ('registry.manage',  'Publish the department''s registries and write or import their records'),
    ('sharing.request',  'Request access to another department''s registry for the own department'),
    ('sharing.decide',   'Approve, refuse and revoke requests for the own department''s registries'),
    ('exchange.figures', 'See data quality and the departments'' sharing figures'),
    ('consent.manage',   'Manage consent policies and data agreements');

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('data_officer', 'registry.manage'), ('data_officer', 'sharing.request'),
    ('data_officer', 'sharing.decide'), ('data_officer', 'exchange.figures'),
    ('data_officer', 'consent.manage'), ('leader', 'exchange.figures');

-- A registry (人口基础信息, 法人基础信息, …): one department owns it; records are found by the
-- blind index of their key field. `key_domain` names the blind-index domain, so that a
-- registry keyed by resident ID number (domain `id_number`) links to the resident's account.
CREATE TABLE registries (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE,
    name_zh          TEXT NOT NULL,
    name_en          TEXT NOT NULL,
    department_id    TEXT NOT NULL REFERENCES departments(id),
    description      TEXT NOT NULL,
    update_frequency TEXT NOT NULL
        CHECK (update_frequency IN ('realtime', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    key_field        TEXT NOT NULL,
    key_domain       TEXT NOT NULL,
    -- 'trusted': the GovStack Data API may serve it to callers the Information Mediator vouches for.
    mediator_access  TEXT NOT NULL DEFAULT 'none' CHECK (mediator_access IN ('none', 'trusted')),
    database_code    TEXT,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Each published version: the JSON Schema records are validated against, and the catalog
-- entry of every field (standard, classification, sharing type, legal basis).
CREATE TABLE registry_versions (
    registry_id TEXT NOT NULL REFERENCES registries(id),
    version     BIGINT NOT NULL,
    schema      TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (registry_id, version)
);

-- Records: JSON with sensitive values sealed in place (context: registry, record, field).
CREATE TABLE registry_records (
    id          TEXT PRIMARY KEY,
    registry_id TEXT NOT NULL REFERENCES registries(id),
    version     BIGINT NOT NULL,
    key_index   TEXT NOT NULL,
    body        TEXT NOT NULL,
    key_id      TEXT,
    seq         BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX registry_records_key ON registry_records (registry_id, key_index);
CREATE INDEX registry_records_seq ON registry_records (registry_id, seq);

-- Bulk imports and their per-row errors, so a web page can show progress and the report.
CREATE TABLE registry_imports (
    id          TEXT PRIMARY KEY,
    registry_id TEXT NOT NULL REFERENCES registries(id),
    file_name   TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('all_or_nothing', 'skip_bad_rows')),
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    total_rows  BIGINT NOT NULL,
    done_rows   BIGINT NOT NULL,
    imported    BIGINT NOT NULL,
    rejected    BIGINT NOT NULL,
    errors      TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);

-- A consuming department's access to named fields of a registry.
CREATE TABLE sharing_agreements (
    id                     TEXT PRIMARY KEY,
    registry_id            TEXT NOT NULL REFERENCES registries(id),
    consumer_department_id TEXT NOT NULL REFERENCES departments(id),
    requested_by           TEXT NOT NULL REFERENCES accounts(id),
    fields                 TEXT NOT NULL,
    purpose                TEXT NOT NULL,
    legal_basis            TEXT NOT NULL,
    verify_only            BIGINT NOT NULL,
    plain_values           BIGINT NOT NULL,
    consent_required       BIGINT NOT NULL,
    rate_per_minute        BIGINT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused', 'revoked')),
    valid_from             BIGINT NOT NULL,
    valid_until            BIGINT NOT NULL,
    reason                 TEXT,
    decided_by             TEXT REFERENCES accounts(id),
    decided_at             BIGINT,
    created_at             BIGINT NOT NULL
);
CREATE INDEX sharing_agreements_registry ON sharing_agreements (registry_id, status);
CREATE INDEX sharing_agreements_consumer ON sharing_agreements (consumer_department_id, status);

-- Calls served per agreement and day (department figures).
CREATE TABLE exchange_usage (
    agreement_id TEXT NOT NULL REFERENCES sharing_agreements(id),
    day          TEXT NOT NULL,
    calls        BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, day)
);

-- Systems that call the exchange: a system account of a department, named as the
-- Information Mediator names it, with a secret (stored as its SHA-256).
CREATE TABLE exchange_clients (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    department_id   TEXT NOT NULL REFERENCES departments(id),
    mediator_client TEXT NOT NULL UNIQUE,
    secret_hash     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

-- GovStack Consent: policies, data agreements, individuals and consent records, each change
-- kept as a revision (snapshot and its SHA-1, linked to the predecessor).
CREATE TABLE consent_revisions (
    id               TEXT PRIMARY KEY,
    schema_name      TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    snapshot         TEXT NOT NULL,
    hash             TEXT NOT NULL,
    predecessor_hash TEXT,
    successor_id     TEXT,
    authorized_by    TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX consent_revisions_object ON consent_revisions (object_id, created_at);

CREATE TABLE consent_policies (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    deleted_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE consent_data_agreements (
    id                   TEXT PRIMARY KEY,
    body                 TEXT NOT NULL,
    policy_id            TEXT REFERENCES consent_policies(id),
    active               BIGINT NOT NULL,
    -- Set when a sharing agreement requires the data subject's consent.
    sharing_agreement_id TEXT REFERENCES sharing_agreements(id),
    deleted_at           BIGINT,
    created_at           BIGINT NOT NULL
);

CREATE TABLE consent_individuals (
    id                   TEXT PRIMARY KEY,
    external_id          TEXT,
    external_id_type     TEXT,
    identity_provider_id TEXT,
    account_id           TEXT REFERENCES accounts(id),
    created_at           BIGINT NOT NULL
);
CREATE UNIQUE INDEX consent_individuals_external ON consent_individuals (external_id, external_id_type);
CREATE UNIQUE INDEX consent_individuals_account ON consent_individuals (account_id);

CREATE TABLE consent_records (
    id                TEXT PRIMARY KEY,
    data_agreement_id TEXT NOT NULL REFERENCES consent_data_agreements(id),
    agreement_revision TEXT NOT NULL REFERENCES consent_revisions(id),
    individual_id     TEXT NOT NULL REFERENCES consent_individuals(id),
    opt_in            BIGINT NOT NULL,
    state             TEXT NOT NULL,
    expires_at        BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (data_agreement_id, individual_id)
);
