-- The GovStack Digital Registries Database API: groups of database descriptions (schema,
-- number format, flags, services) as registry systems exchange them. Owned by `exchange`.
-- A description is kept as the JSON GovStack defines (DatabaseInfo) beside the columns it
-- is found by.
CREATE TABLE registry_database_groups (
    id                   BIGINT PRIMARY KEY,
    name                 TEXT NOT NULL,
    code                 TEXT NOT NULL UNIQUE,
    group_id             BIGINT NOT NULL,
    display_order        BIGINT NOT NULL,
    data_index_increment BIGINT NOT NULL
);

CREATE TABLE registry_databases (
    id          BIGINT PRIMARY KEY,
    group_id    BIGINT NOT NULL REFERENCES registry_database_groups(id),
    name        TEXT NOT NULL,
    info        TEXT NOT NULL,
    modified_at BIGINT NOT NULL
);
CREATE INDEX registry_databases_group ON registry_databases (group_id, id);
