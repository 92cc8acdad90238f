-- Personal-data protection: data keys (sealed under the master key) and masking policy.

CREATE TABLE data_keys (
    id         TEXT PRIMARY KEY,
    wrapped    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- How each protected field is shown when masked.
CREATE TABLE field_masks (
    field TEXT PRIMARY KEY,
    mask  TEXT NOT NULL CHECK (mask IN ('id_number', 'mobile', 'name', 'address', 'full'))
);

-- Roles that may see a field's plain value, each time with a stated purpose.
CREATE TABLE unmasking_rules (
    field     TEXT NOT NULL REFERENCES field_masks(field),
    role_code TEXT NOT NULL REFERENCES roles(code),
    PRIMARY KEY (field, role_code)
);

INSERT INTO field_masks (field, mask) VALUES
    ('resident.name', 'name'),
    ('resident.id_number', 'id_number'),
    ('resident.mobile', 'mobile'),
    ('resident.address', 'address');

INSERT INTO unmasking_rules (field, role_code) VALUES
    ('resident.name', 'window_clerk'), ('resident.id_number', 'window_clerk'),
    ('resident.mobile', 'window_clerk'), ('resident.address', 'window_clerk'),
    ('resident.name', 'approver'), ('resident.id_number', 'approver'),
    ('resident.mobile', 'approver'), ('resident.address', 'approver'),
    ('resident.name', 'community_worker'), ('resident.address', 'community_worker');
