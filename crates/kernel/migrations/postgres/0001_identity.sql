-- Identity: regions, departments, accounts, roles, sessions, tokens.
-- Times are Unix epoch milliseconds (UTC). IDs are UUIDv7 text.

CREATE TABLE regions (
    id        TEXT PRIMARY KEY,
    code      TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    level     TEXT NOT NULL CHECK (level IN ('province','city','district','street','community','grid')),
    parent_id TEXT REFERENCES regions(id),
    -- materialized path of codes, '/990000/990100/990102/': a subtree is a prefix match
    -- byte order ("C"), so that a subtree is exactly the range [path, path with '/' -> '0')
    path      TEXT COLLATE "C" NOT NULL UNIQUE
);

CREATE TABLE departments (
    id        TEXT PRIMARY KEY,
    code      TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    region_id TEXT NOT NULL REFERENCES regions(id),
    -- the line of work, by its usual abbreviation (GA 公安, MZ 民政, …): routes requests
    -- such as data corrections to the department that owns the data
    kind      TEXT
);
CREATE INDEX departments_region ON departments(region_id);

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL CHECK (kind IN ('citizen','enterprise','staff','system')),
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    password_hash        TEXT,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    totp_secret          TEXT,
    totp_pending_secret  TEXT,
    totp_last_step       BIGINT NOT NULL DEFAULT 0,
    region_id            TEXT REFERENCES regions(id),
    department_id        TEXT REFERENCES departments(id),
    locale               TEXT,
    elder_mode           BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL
);
CREATE INDEX accounts_region ON accounts(region_id);

-- Identifiers are sealed under a data key (envelope encryption, see `protect`); the
-- *_bidx columns are keyed blind indexes (HMAC-SHA-256) for equality lookup.
CREATE TABLE citizens (
    account_id     TEXT PRIMARY KEY REFERENCES accounts(id),
    real_name      TEXT NOT NULL,
    id_number_enc  TEXT NOT NULL,
    id_number_bidx TEXT NOT NULL UNIQUE,
    mobile_enc     TEXT NOT NULL,
    mobile_bidx    TEXT NOT NULL,
    address_enc    TEXT,
    -- the data key the row's ciphertexts use (key rotation re-encrypts by this)
    key_id         TEXT NOT NULL
);
CREATE INDEX citizens_mobile_bidx ON citizens(mobile_bidx);
CREATE INDEX citizens_key ON citizens(key_id);

CREATE TABLE enterprises (
    account_id           TEXT PRIMARY KEY REFERENCES accounts(id),
    name                 TEXT NOT NULL,
    credit_code          TEXT NOT NULL UNIQUE,
    legal_representative TEXT NOT NULL
);

CREATE TABLE permissions (
    code        TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE roles (
    code      TEXT PRIMARY KEY,
    name_zh   TEXT NOT NULL,
    name_en   TEXT NOT NULL,
    -- 'jurisdiction': the holder's region subtree; 'all': the whole platform
    scope     TEXT NOT NULL CHECK (scope IN ('jurisdiction','all')),
    -- highest data classification the role may see: 1 public .. 4 core
    clearance BIGINT NOT NULL CHECK (clearance BETWEEN 1 AND 4),
    -- 三员分立: at most one duty per account, enforced by account_roles_one_duty
    duty      TEXT CHECK (duty IN ('system_admin','security_admin','auditor'))
);

CREATE TABLE role_permissions (
    role_code       TEXT NOT NULL REFERENCES roles(code),
    permission_code TEXT NOT NULL REFERENCES permissions(code),
    PRIMARY KEY (role_code, permission_code)
);

CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role_code  TEXT NOT NULL REFERENCES roles(code),
    duty       TEXT,
    granted_at BIGINT NOT NULL,
    granted_by TEXT,
    PRIMARY KEY (account_id, role_code)
);
CREATE UNIQUE INDEX account_roles_one_duty ON account_roles(account_id) WHERE duty IS NOT NULL;

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    -- 'mfa': password accepted, second factor outstanding; 'full': signed in
    stage        TEXT NOT NULL CHECK (stage IN ('mfa','full')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    source       TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- Failed sign-ins per account ('account:ID') and per source address ('source:ADDR').
CREATE TABLE sign_in_throttles (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
