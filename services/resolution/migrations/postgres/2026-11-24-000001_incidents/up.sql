CREATE SEQUENCE incident_number_seq START 1000;

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    caller TEXT NOT NULL,
    service TEXT,
    configuration_items TEXT NOT NULL,
    category TEXT,
    impact TEXT NOT NULL,
    urgency TEXT NOT NULL,
    priority INTEGER NOT NULL,
    priority_override_reason TEXT,
    state TEXT NOT NULL,
    pending_reason TEXT,
    assignment_group TEXT,
    assignee TEXT,
    escalation_level INTEGER NOT NULL,
    major BOOLEAN NOT NULL,
    major_manager TEXT,
    resolution_code TEXT,
    resolution_notes TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    closed_at TIMESTAMP,
    version BIGINT NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_at, id);
CREATE INDEX incidents_updated ON incidents (updated_at, id);
CREATE INDEX incidents_priority ON incidents (priority, id);
CREATE INDEX incidents_state ON incidents (state);
CREATE INDEX incidents_assignee ON incidents (assignee);
CREATE INDEX incidents_group ON incidents (assignment_group);
CREATE INDEX incidents_service ON incidents (service);

CREATE TABLE incident_activity (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX incident_activity_incident ON incident_activity (incident_id, at, id);

-- The service catalogue as resolution needs it, kept from service_level.service.* events.
CREATE TABLE catalogue_services (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    criticality TEXT NOT NULL,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL
);
