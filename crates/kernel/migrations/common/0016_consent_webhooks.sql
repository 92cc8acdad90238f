-- GovStack Consent webhooks: third parties told of consent given, withdrawn or signed. The
-- secret that signs each delivery is sealed like any other secret.
CREATE TABLE consent_webhooks (
    id            TEXT PRIMARY KEY,
    payload_url   TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    disabled      BIGINT NOT NULL,
    events        TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
