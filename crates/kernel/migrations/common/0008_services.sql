-- One-stop services (issue 4): the catalog, forms, workflow definitions, applications with
-- their history and tasks, notifications, materials, certificates and ratings.
INSERT INTO permissions (code, description) VALUES
    ('application.handle',  'Work on applications in the inbox within jurisdiction'),
    ('application.assist',  'Submit an application for a citizen at the window (帮办代办)'),
    ('service.manage',      'Publish services, forms and workflow definitions'),
    ('certificate.revoke',  'Revoke an e-certificate issued by the own department');

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('window_clerk', 'application.handle'), ('approver', 'application.handle'), ('leader', 'application.handle'),
    ('window_clerk', 'application.assist'), ('community_worker', 'application.assist'),
    ('system_admin', 'service.manage'),
    ('approver', 'certificate.revoke');

-- Overdue cases escalate to the department's leader, who must be able to read them (L3).
UPDATE roles SET clearance = 3 WHERE code = 'leader';

CREATE TABLE workflow_definitions (
    code       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (code, version)
);

-- A service (政务服务事项). Ids are text: GovStack clients bring their own.
CREATE TABLE services (
    id                TEXT PRIMARY KEY,
    code              TEXT NOT NULL UNIQUE,
    -- the public sees only this version; NULL while nothing is published
    published_version BIGINT,
    created_at        BIGINT NOT NULL
);

CREATE TABLE service_versions (
    service_id       TEXT NOT NULL REFERENCES services(id),
    version          BIGINT NOT NULL,
    -- the guide, materials, limits and certificate spec as JSON
    body             TEXT NOT NULL,
    form_id          TEXT NOT NULL,
    workflow_code    TEXT NOT NULL,
    workflow_version BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (service_id, version),
    FOREIGN KEY (workflow_code, workflow_version) REFERENCES workflow_definitions(code, version)
);

-- eForms: JSON Schema 2020-12 plus layout hints, one per service version.
CREATE TABLE forms (
    id              TEXT PRIMARY KEY,
    service_id      TEXT NOT NULL REFERENCES services(id),
    service_version BIGINT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE bundles (
    code       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Readable case numbers YL-YYYYMMDD-NNNNNN: one counter per day.
CREATE TABLE application_numbers (
    day  TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE applications (
    id               TEXT PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    service_id       TEXT NOT NULL REFERENCES services(id),
    service_version  BIGINT NOT NULL,
    -- set when submitted as part of a bundle (一件事一次办); one application per bundle
    bundle_code      TEXT REFERENCES bundles(code),
    applicant_id     TEXT NOT NULL REFERENCES accounts(id),
    -- the staff member who submitted for the applicant (帮办代办) and how the applicant confirmed
    assisted_by      TEXT REFERENCES accounts(id),
    confirmed_by     TEXT,
    department_id    TEXT NOT NULL REFERENCES departments(id),
    region_path      TEXT NOT NULL,
    -- lifecycle phase shown to people: submitted, in_review, supplement, approved, ...
    status           TEXT NOT NULL,
    state            TEXT NOT NULL,
    workflow_code    TEXT NOT NULL,
    workflow_version BIGINT NOT NULL,
    -- the workflow case (branch decisions, deadlines) as JSON
    case_body        TEXT NOT NULL,
    -- form values that are not sensitive, as JSON
    form_body        TEXT NOT NULL,
    -- sensitive values, sealed together
    sealed_form      TEXT,
    -- where prefilled values came from, as JSON {field: source}
    prefill          TEXT NOT NULL,
    supplements      BIGINT NOT NULL DEFAULT 0,
    -- bumped on every change: concurrent decisions on one case cannot both win
    revision         BIGINT NOT NULL DEFAULT 0,
    supplement_note  TEXT,
    due_at           BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX applications_applicant ON applications(applicant_id, created_at);
CREATE INDEX applications_department ON applications(department_id, status);

-- One row per transition (actor, action, comment, time) and its audit ledger index.
CREATE TABLE application_history (
    application_id TEXT NOT NULL REFERENCES applications(id),
    seq            BIGINT NOT NULL,
    action         TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    actor_id       TEXT,
    actor_name     TEXT NOT NULL,
    comment        TEXT,
    explanation    TEXT,
    at             BIGINT NOT NULL,
    ledger_index   BIGINT NOT NULL,
    PRIMARY KEY (application_id, seq)
);

-- The staff inbox: work waiting for a role in a department.
CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('case', 'rectification')),
    application_id TEXT NOT NULL REFERENCES applications(id),
    state          TEXT NOT NULL,
    branch         TEXT,
    role           TEXT NOT NULL,
    department_id  TEXT NOT NULL REFERENCES departments(id),
    region_path    TEXT NOT NULL,
    assignee_id    TEXT REFERENCES accounts(id),
    status         TEXT NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    due_at         BIGINT,
    warned_at      BIGINT,
    -- overdue tasks escalate to the supervising role
    escalated_to   TEXT,
    escalated_at   BIGINT,
    created_at     BIGINT NOT NULL,
    closed_at      BIGINT
);
CREATE INDEX tasks_inbox ON tasks(department_id, status, role);
CREATE INDEX tasks_application ON tasks(application_id, status);
CREATE INDEX tasks_due ON tasks(status, due_at);

CREATE TABLE notifications (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    application_id TEXT REFERENCES applications(id),
    text_zh        TEXT NOT NULL,
    text_en        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    read_at        BIGINT
);
CREATE INDEX notifications_account ON notifications(account_id, created_at);

-- Uploaded files, content-addressed (SHA-256) under the data directory.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL REFERENCES accounts(id),
    sha256       TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    application_id TEXT REFERENCES applications(id),
    material     TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX documents_application ON documents(application_id);

CREATE TABLE certificates (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    holder_id       TEXT NOT NULL REFERENCES accounts(id),
    department_id   TEXT NOT NULL REFERENCES departments(id),
    application_id  TEXT REFERENCES applications(id),
    -- the signed document (canonical JSON) and its Ed25519 signature
    body            TEXT NOT NULL,
    signature       TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    valid_until     BIGINT,
    revoked_at      BIGINT,
    revocation_reason TEXT,
    ledger_index    BIGINT NOT NULL
);
CREATE INDEX certificates_holder ON certificates(holder_id, type);

-- 好差评 and, for a rating of 1 or 2, the department's rectification and reply.
CREATE TABLE ratings (
    application_id TEXT PRIMARY KEY REFERENCES applications(id),
    applicant_id   TEXT NOT NULL REFERENCES accounts(id),
    department_id  TEXT NOT NULL REFERENCES departments(id),
    score          BIGINT NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment        TEXT,
    created_at     BIGINT NOT NULL,
    reply          TEXT,
    replied_at     BIGINT
);

-- One-time codes sent to a citizen's mobile to confirm an assisted submission (帮办代办).
CREATE TABLE assist_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    staff_id   TEXT NOT NULL REFERENCES accounts(id),
    code_hash  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, staff_id)
);
