-- GovStack Registration building block (issue 4): application files that other systems
-- submit through the Information Mediator, their tasks and documents, and the GovStack
-- descriptors of catalog services and eForms. Ids are text: clients bring their own
-- (fixtures use ids that are not UUIDs), and a file may name a service this platform does not
-- know, so there are no foreign keys to the catalog.
CREATE TABLE registration_services (
    service_id TEXT PRIMARY KEY REFERENCES services(id),
    -- version, type, isExecutable, isClosed, description, serviceBody as GovStack gives them
    body       TEXT NOT NULL
);

CREATE TABLE registration_eforms (
    eform_id   TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services(id),
    -- name, description, version, latest and the schema as GovStack gives them
    body       TEXT NOT NULL
);
CREATE INDEX registration_eforms_service ON registration_eforms(service_id);

CREATE TABLE registration_files (
    file_id      TEXT PRIMARY KEY,
    service_id   TEXT NOT NULL,
    service_name TEXT NOT NULL,
    applicant_id TEXT NOT NULL,
    -- the application data as submitted, without the sensitive form values
    body         TEXT NOT NULL,
    -- sensitive form values, sealed by the protect module
    sealed_data  TEXT,
    status       TEXT NOT NULL,
    -- the Information-Mediator-Client that submitted it
    client       TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX registration_files_service ON registration_files(service_id);
CREATE INDEX registration_files_applicant ON registration_files(applicant_id);

CREATE TABLE registration_tasks (
    task_id      TEXT PRIMARY KEY,
    file_id      TEXT NOT NULL,
    main_task_id TEXT,
    assignee_id  TEXT,
    -- name, role, operator, description, form variables and data as GovStack gives them
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX registration_tasks_file ON registration_tasks(file_id);

CREATE TABLE registration_documents (
    id           TEXT PRIMARY KEY,
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    metadata     TEXT,
    client       TEXT,
    created_at   BIGINT NOT NULL
);
