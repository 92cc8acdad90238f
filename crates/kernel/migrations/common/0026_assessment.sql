-- 绩效考核: the indicator system departments are assessed by, as data. Each change is a new
-- version; the newest is in force, and the earlier ones say what was in force before.
CREATE TABLE assessment_plans (
    version    BIGINT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO permissions (code, description) VALUES
    ('assessment.manage', 'Set the indicator system departments are assessed by (考核办)');

INSERT INTO roles (code, name_zh, name_en, scope, clearance, duty) VALUES
    ('assessor', '考核办', 'Assessment office', 'jurisdiction', 2, NULL);

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('assessor', 'assessment.manage'), ('assessor', 'insight.read'), ('assessor', 'organisation.read');
