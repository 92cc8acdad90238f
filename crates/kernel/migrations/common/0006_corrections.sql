-- Citizens' requests to correct data the platform holds about them (我的数据).
CREATE TABLE correction_requests (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    -- the department that owns the data and answers the request
    department_id TEXT NOT NULL REFERENCES departments(id),
    field         TEXT NOT NULL,
    -- sealed: a corrected ID number or address is personal data too
    requested_enc TEXT NOT NULL,
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('open', 'done', 'rejected')),
    created_at    BIGINT NOT NULL
);
CREATE INDEX correction_requests_department ON correction_requests(department_id, status);
CREATE INDEX correction_requests_account ON correction_requests(account_id);
