-- Calls per sharing agreement and minute, counted in the database so that every node of a
-- PostgreSQL deployment enforces one agreed rate (a SQLite deployment is one process, which
-- counts in memory).
CREATE TABLE exchange_call_counts (
    agreement_id TEXT NOT NULL,
    minute       BIGINT NOT NULL,
    calls        BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, minute)
);
