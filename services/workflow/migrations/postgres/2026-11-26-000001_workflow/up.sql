-- Definitions: every content deployed is a version; `deployed_at` orders them (newest wins).
CREATE TABLE wf_definitions (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,
    deployed_by TEXT NOT NULL,
    deployed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX wf_definitions_newest ON wf_definitions (id, deployed_at);

-- Instances: `state` is the interpreter's whole state (JSON); the other columns are for queries.
CREATE TABLE wf_instances (
    id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version TEXT NOT NULL,
    business_key TEXT NOT NULL,
    initiator TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    incident TEXT,
    parent_id TEXT REFERENCES wf_instances (id),
    state TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX wf_instances_key ON wf_instances (definition, business_key);
CREATE INDEX wf_instances_incident ON wf_instances (incident) WHERE incident IS NOT NULL;

-- Human tasks, open and closed.
CREATE TABLE wf_tasks (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES wf_instances (id),
    node TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    assignee TEXT,
    forbidden TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP,
    ended_at TIMESTAMP,
    completed_by TEXT,
    outcome TEXT,
    comment TEXT,
    fields TEXT
);
CREATE INDEX wf_tasks_assignee ON wf_tasks (assignee, state, id);
CREATE INDEX wf_tasks_instance ON wf_tasks (instance_id, id);

-- Who may claim a task: users and roles.
CREATE TABLE wf_task_candidates (
    task_id TEXT NOT NULL REFERENCES wf_tasks (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (task_id, kind, name)
);
CREATE INDEX wf_task_candidates_name ON wf_task_candidates (kind, name);

-- One person counts once in a multi-instance decision (a round is one entry into the task).
CREATE TABLE wf_decisions (
    instance_id TEXT NOT NULL REFERENCES wf_instances (id),
    node TEXT NOT NULL,
    round INTEGER NOT NULL,
    decided_by TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (instance_id, node, round, decided_by)
);

-- Pending timers, scanned by due time.
CREATE TABLE wf_timers (
    instance_id TEXT NOT NULL REFERENCES wf_instances (id),
    timer_id INTEGER NOT NULL,
    due_at TIMESTAMP NOT NULL,
    PRIMARY KEY (instance_id, timer_id)
);
CREATE INDEX wf_timers_due ON wf_timers (due_at);

-- Bus events instances wait for (message nodes and event gateways).
CREATE TABLE wf_subscriptions (
    instance_id TEXT NOT NULL REFERENCES wf_instances (id),
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (instance_id, event_type, subject)
);
CREATE INDEX wf_subscriptions_event ON wf_subscriptions (event_type, subject);

-- Every step of every instance, with actor and time.
CREATE TABLE wf_history (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES wf_instances (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    node TEXT,
    details TEXT NOT NULL
);
CREATE INDEX wf_history_instance ON wf_history (instance_id, id);
