-- Built-in permissions and roles. Roles are data: more can be added without code.
INSERT INTO permissions (code, description) VALUES
    ('resident.read',       'Look up a resident''s record within jurisdiction'),
    ('enterprise.read',     'Look up an enterprise''s record within jurisdiction'),
    ('organisation.read',   'Read regions, departments and staff directory'),
    ('organisation.manage', 'Create regions and departments'),
    ('account.create',      'Create staff and system accounts'),
    ('role.grant',          'Grant and revoke roles'),
    ('security_event.read', 'Read the security event trail'),
    ('security_alert.handle', 'See and acknowledge security alerts');

INSERT INTO roles (code, name_zh, name_en, scope, clearance, duty) VALUES
    ('window_clerk',     '窗口工作人员', 'Window clerk',            'jurisdiction', 3, NULL),
    ('approver',         '审批人员',     'Approver',                'jurisdiction', 3, NULL),
    ('community_worker', '社区网格员',   'Community worker',        'jurisdiction', 2, NULL),
    ('data_officer',     '部门数据专员', 'Department data officer', 'jurisdiction', 3, NULL),
    ('leader',           '领导',         'Leader',                  'jurisdiction', 2, NULL),
    ('auditor',          '审计管理员',   'Auditor',                 'all',          4, 'auditor'),
    ('security_admin',   '安全管理员',   'Security administrator',  'all',          2, 'security_admin'),
    ('system_admin',     '系统管理员',   'System administrator',    'all',          2, 'system_admin');

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('window_clerk', 'resident.read'), ('window_clerk', 'enterprise.read'), ('window_clerk', 'organisation.read'),
    ('approver', 'resident.read'), ('approver', 'enterprise.read'), ('approver', 'organisation.read'),
    ('community_worker', 'resident.read'), ('community_worker', 'enterprise.read'), ('community_worker', 'organisation.read'),
    ('data_officer', 'organisation.read'),
    ('leader', 'organisation.read'),
    ('auditor', 'security_event.read'), ('auditor', 'organisation.read'),
    ('security_admin', 'role.grant'), ('security_admin', 'organisation.read'),
    ('security_admin', 'security_alert.handle'), ('auditor', 'security_alert.handle'),
    ('system_admin', 'account.create'), ('system_admin', 'organisation.read'),
    ('system_admin', 'organisation.manage');
