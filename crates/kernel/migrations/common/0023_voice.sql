-- 12345 接诉即办 (the voice module): requests from residents on every channel, the routing
-- tables that say which department handles which category in a district, and the
-- dispatchers' corrections of the classifier, kept as training data.
CREATE TABLE voice_requests (
    id              TEXT PRIMARY KEY,
    -- 12345-YYYYMMDD-NNNNNN, counted per China day
    number          TEXT NOT NULL UNIQUE,
    -- complaint, help, suggestion, enquiry, report or praise
    kind            TEXT NOT NULL,
    -- portal, api, hotline or open311
    channel         TEXT NOT NULL,
    -- the person, when signed in (a hotline caller or Open311 client may have no account)
    account_id      TEXT REFERENCES accounts(id),
    -- the hotline operator who recorded a call for the caller, and the caller's name and
    -- mobile as JSON, sealed (protect) under the context `voice_requests.caller:<id>`
    recorded_by     TEXT REFERENCES accounts(id),
    caller          TEXT,
    idempotency_key TEXT,
    text            TEXT NOT NULL,
    region_code     TEXT NOT NULL,
    region_path     TEXT NOT NULL,
    address         TEXT,
    -- normal or urgent
    urgency         TEXT NOT NULL,
    -- 1 when the person agreed that the answer may be published, de-identified
    publishable     INTEGER NOT NULL,
    -- the category now (the classifier's proposal until a dispatcher changes it)
    category        TEXT NOT NULL,
    proposed        TEXT NOT NULL,
    confidence      DOUBLE PRECISION NOT NULL,
    -- the words that weighed most, as a JSON array
    reasons         TEXT NOT NULL,
    -- the handling department; NULL while the request waits in the dispatchers' queue
    department_id   TEXT REFERENCES departments(id),
    -- the workflow state and the whole case (definition, history, deadlines) as JSON
    state           TEXT NOT NULL,
    workflow        TEXT NOT NULL,
    state_due       BIGINT,
    reopened        INTEGER NOT NULL,
    -- 督办 of the present step: 0 none, 1 told it is due soon, 2 told it is overdue
    supervised      INTEGER NOT NULL,
    answer          TEXT,
    -- satisfied, basically_satisfied or unsatisfied
    rating          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX voice_requests_idempotency ON voice_requests(account_id, idempotency_key);
CREATE UNIQUE INDEX voice_requests_call_idempotency ON voice_requests(recorded_by, idempotency_key);
CREATE INDEX voice_requests_account ON voice_requests(account_id, created_at);
CREATE INDEX voice_requests_department ON voice_requests(department_id, state, created_at);
CREATE INDEX voice_requests_queue ON voice_requests(state, region_path);
CREATE INDEX voice_requests_due ON voice_requests(state_due);

CREATE TABLE voice_numbers (
    day  TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

-- A district's routing table: which department handles a category there. A request goes to
-- the route of its own region or the nearest one above; without one, to the nearest
-- department of the category's usual kind.
CREATE TABLE voice_routes (
    region_code     TEXT NOT NULL,
    category        TEXT NOT NULL,
    department_code TEXT NOT NULL,
    PRIMARY KEY (region_code, category)
);

CREATE TABLE voice_corrections (
    request_id TEXT PRIMARY KEY REFERENCES voice_requests(id),
    text       TEXT NOT NULL,
    proposed   TEXT NOT NULL,
    chosen     TEXT NOT NULL,
    by_account TEXT NOT NULL,
    at         BIGINT NOT NULL
);

-- Open311 GeoReport v2 client applications: the SHA-256 of the api_key (shown once), and the
-- region their requests are routed in unless they name a jurisdiction_id.
CREATE TABLE open311_clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    TEXT NOT NULL UNIQUE,
    region_code TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

INSERT INTO permissions (code, description) VALUES
    ('voice.record',   'Record a 12345 call for the caller (话务员)'),
    ('voice.dispatch', 'Dispatch 12345 requests to departments within jurisdiction (派单)'),
    ('voice.handle',   'Sign for, handle and answer the own department''s 12345 requests');

INSERT INTO roles (code, name_zh, name_en, scope, clearance, duty) VALUES
    ('hotline_operator', '话务员', 'Hotline operator', 'jurisdiction', 2, NULL),
    ('dispatcher',       '派单员', 'Dispatcher',       'jurisdiction', 2, NULL);

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('hotline_operator', 'voice.record'), ('hotline_operator', 'organisation.read'),
    ('dispatcher', 'voice.dispatch'), ('dispatcher', 'voice.record'), ('dispatcher', 'organisation.read'),
    ('window_clerk', 'voice.handle'), ('approver', 'voice.handle'), ('leader', 'voice.handle');
