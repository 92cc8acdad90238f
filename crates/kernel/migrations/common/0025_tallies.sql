-- Tallies: what the modules count, by China-time day, region, department, service (or 12345
-- category) and channel, added in the transaction of the change they count (kernel::tally).
-- Insight's KPIs are sums over them.
CREATE TABLE tallies (
    day           TEXT NOT NULL,
    region_path   TEXT NOT NULL,
    department_id TEXT NOT NULL,
    service       TEXT NOT NULL,
    channel       TEXT NOT NULL,
    measure       TEXT NOT NULL,
    value         BIGINT NOT NULL,
    PRIMARY KEY (measure, day, region_path, department_id, service, channel)
);
CREATE INDEX tallies_region_day ON tallies (region_path, day);

INSERT INTO permissions (code, description) VALUES
    ('insight.read', 'See the service KPIs and dashboards within jurisdiction');

INSERT INTO role_permissions (role_code, permission_code) VALUES
    ('leader', 'insight.read');
