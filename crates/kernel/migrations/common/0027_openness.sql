-- 政府信息公开 (the openness module), after the 2019 regulation: documents a department
-- publishes of its own accord (主动公开) with every revision kept, its disclosure guide, and
-- the requests people make for information (依申请公开) with the answer and its deadline.
CREATE TABLE disclosure_documents (
    id              TEXT PRIMARY KEY,
    -- 索引号: <department code>/<year>-<5 digits>, counted per department and year
    index_number    TEXT NOT NULL UNIQUE,
    -- 发布机构, and the region it sits in (what a department's staff may publish for)
    department_id   TEXT NOT NULL REFERENCES departments(id),
    region_path     TEXT NOT NULL,
    -- policy, regulation, notice, plan, budget, final_account, personnel or interpretation
    kind            TEXT NOT NULL,
    -- 主题分类 (the State Council's subject classification), by code
    theme           TEXT NOT NULL,
    title           TEXT NOT NULL,
    -- 文号, when the document has one
    document_number TEXT,
    -- 成文日期 (YYYY-MM-DD)
    written_on      TEXT NOT NULL,
    -- 发布日期: the first publication
    published_at    BIGINT NOT NULL,
    -- 有效性: in_force or repealed
    validity        TEXT NOT NULL,
    -- 政策解读: the policy this document explains
    interprets      TEXT REFERENCES disclosure_documents(id),
    -- the revision in force (1 when first published)
    version         BIGINT NOT NULL,
    body            TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX disclosure_documents_department ON disclosure_documents(department_id, published_at);
CREATE INDEX disclosure_documents_interprets ON disclosure_documents(interprets);

-- Every publication, revision and repeal of a document, as it was then, with its entry on
-- the `public` ledger.
CREATE TABLE disclosure_revisions (
    document_id     TEXT NOT NULL REFERENCES disclosure_documents(id),
    version         BIGINT NOT NULL,
    -- published, revised or repealed
    change          TEXT NOT NULL,
    title           TEXT NOT NULL,
    document_number TEXT,
    written_on      TEXT NOT NULL,
    theme           TEXT NOT NULL,
    body            TEXT NOT NULL,
    -- why it was revised or repealed
    note            TEXT,
    -- SHA-256 of the revision's canonical JSON, which the ledger entry carries
    sha256          TEXT NOT NULL,
    ledger_index    BIGINT NOT NULL,
    changed_by      TEXT NOT NULL REFERENCES accounts(id),
    changed_at      BIGINT NOT NULL,
    PRIMARY KEY (document_id, version)
);

CREATE TABLE disclosure_numbers (
    department_id TEXT NOT NULL,
    year          BIGINT NOT NULL,
    last          BIGINT NOT NULL,
    PRIMARY KEY (department_id, year)
);

-- 政府信息公开指南: how to ask a department for information, in its own words.
CREATE TABLE disclosure_guides (
    department_id TEXT PRIMARY KEY REFERENCES departments(id),
    body          TEXT NOT NULL,
    updated_by    TEXT NOT NULL REFERENCES accounts(id),
    updated_at    BIGINT NOT NULL
);

-- 依申请公开: a request for information, its deadline (20 working days, once extended by
-- at most 20; counted again from the day a clarification arrives) and the answer.
CREATE TABLE disclosure_requests (
    id                TEXT PRIMARY KEY,
    -- 依申请-YYYYMMDD-NNNN, counted per China day
    number            TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    -- person or enterprise (the annual report counts them apart)
    applicant_kind    TEXT NOT NULL,
    department_id     TEXT NOT NULL REFERENCES departments(id),
    region_path       TEXT NOT NULL,
    description       TEXT NOT NULL,
    purpose           TEXT,
    -- online, email, post or pickup
    delivery          TEXT NOT NULL,
    idempotency_key   TEXT,
    -- handling, awaiting_clarification or answered
    state             TEXT NOT NULL,
    received_at       BIGINT NOT NULL,
    -- the day the 20 working days count from: receipt, or the clarification's arrival
    clock_from        TEXT NOT NULL,
    -- the last day to answer (YYYY-MM-DD, China time); NULL while waiting for a clarification
    due_on            TEXT,
    extension_days    BIGINT NOT NULL,
    extension_reason  TEXT,
    clarification_ask TEXT,
    clarification     TEXT,
    -- disclosed, partly_disclosed, withheld, not_exist or not_held
    answer_type       TEXT,
    answer_text       TEXT,
    -- the regulation's article a withholding rests on
    legal_ground      TEXT,
    -- 非本机关负责: who holds the information
    referral          TEXT,
    answered_by       TEXT REFERENCES accounts(id),
    answered_at       BIGINT,
    -- 督办 of the present deadline: 0 none, 1 told it is near, 2 told it is past
    supervised        INTEGER NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX disclosure_requests_idempotency ON disclosure_requests(account_id, idempotency_key);
CREATE INDEX disclosure_requests_department ON disclosure_requests(department_id, state, due_on);
CREATE INDEX disclosure_requests_account ON disclosure_requests(account_id, received_at);

CREATE TABLE disclosure_request_numbers (
    day  TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

-- 年度报告: the figures the platform cannot know (reconsiderations, lawsuits), entered by
-- staff per department and year, as JSON.
CREATE TABLE disclosure_report_inputs (
    department_id TEXT NOT NULL REFERENCES departments(id),
    year          BIGINT NOT NULL,
    body          TEXT NOT NULL,
    updated_by    TEXT NOT NULL REFERENCES accounts(id),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (department_id, year)
);

INSERT INTO permissions (code, description) VALUES
    ('disclosure.publish', 'Publish, revise and repeal the own department''s government information (主动公开)'),
    ('disclosure.answer', 'Answer requests for the own department''s government information (依申请公开)');

INSERT INTO roles (code, name_zh, name_en, scope, clearance, duty) VALUES
    ('disclosure_officer', '政务公开专员', 'Disclosure officer', 'jurisdiction', 2, NULL);

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('disclosure_officer', 'disclosure.publish'), ('disclosure_officer', 'disclosure.answer'),
    ('disclosure_officer', 'organisation.read');
