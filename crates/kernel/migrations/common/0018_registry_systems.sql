-- The systems a registry's department lets use its GovStack Data API: a mediated call is
-- served only for a system named here, however it proved who it is.
CREATE TABLE registry_systems (
    registry_id     TEXT NOT NULL REFERENCES registries(id),
    mediator_client TEXT NOT NULL,
    granted_by      TEXT NOT NULL,
    granted_at      BIGINT NOT NULL,
    PRIMARY KEY (registry_id, mediator_client)
);
