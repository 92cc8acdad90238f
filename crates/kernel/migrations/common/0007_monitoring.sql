-- Security monitoring: alerts raised by rules over the audit ledger, and the outbox that
-- carries messages (alerts by email, later other events) out of the process reliably.

CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    rule            TEXT NOT NULL,
    -- what the alert is about and its time bucket: one alert per rule and key
    key             TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    summary         TEXT NOT NULL,
    first_index     BIGINT,
    raised_at       BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    UNIQUE (rule, key)
);
CREATE INDEX alerts_open ON alerts(acknowledged_at, raised_at);

CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- the server delivering it, until when (several servers share one outbox)
    claimed_until BIGINT
);
CREATE INDEX outbox_pending ON outbox(delivered_at, created_at);

CREATE INDEX ledger_entries_at ON ledger_entries(log, at);
