-- Facts about this installation that every node must agree on.
CREATE TABLE platform_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
