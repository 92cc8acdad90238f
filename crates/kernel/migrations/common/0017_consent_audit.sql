-- GovStack Consent audit: the Data Processing Auditor reads every consent record and data
-- agreement, with their revision chains and signatures, and changes nothing.
INSERT INTO permissions (code, description) VALUES
    ('consent.audit', 'Read every consent record and data agreement with their revisions and signatures');

INSERT INTO role_permissions (role_code, permission_code) VALUES ('auditor', 'consent.audit');
