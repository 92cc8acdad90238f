-- The three administrators (三员) act within their jurisdiction like every other role: a
-- district's within the district, the province's (accounts at the province) across it.
UPDATE roles SET scope = 'jurisdiction' WHERE code IN ('auditor', 'security_admin', 'system_admin');
