CREATE SEQUENCE problem_number_seq START 1000;
-- Problems and known errors (8.6.3), with the incidents they explain and their analysis.
CREATE TABLE problems (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    service TEXT,
    configuration_items TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    symptoms TEXT NOT NULL,
    root_cause TEXT NOT NULL,
    workaround TEXT NOT NULL,
    resolution TEXT NOT NULL,
    workaround_uses INTEGER NOT NULL,
    recurrences INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    version BIGINT NOT NULL
);
CREATE INDEX problems_state ON problems (state, id);
CREATE INDEX problems_service ON problems (service);

CREATE TABLE problem_incidents (
    problem_id TEXT NOT NULL REFERENCES problems (id),
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    linked_by TEXT NOT NULL,
    linked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (problem_id, incident_id)
);
CREATE INDEX problem_incidents_incident ON problem_incidents (incident_id);

CREATE TABLE problem_activity (
    id TEXT PRIMARY KEY,
    problem_id TEXT NOT NULL REFERENCES problems (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX problem_activity_problem ON problem_activity (problem_id, at, id);
-- Known-error search: full text over what a searcher types.
CREATE INDEX problems_search ON problems USING GIN (to_tsvector('english', title || ' ' || symptoms || ' ' || root_cause || ' ' || workaround));
