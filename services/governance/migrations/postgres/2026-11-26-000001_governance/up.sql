-- The governance service: the management system (ISO/IEC 20000-1 clauses 4 to 7, 9 and 10)
-- and the tamper-evident audit ledger.

CREATE TABLE gov_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO gov_counters (name, value) VALUES
    ('risk', 1000), ('audit', 1000), ('nonconformity', 1000), ('improvement', 1000), ('review', 1000);

-- Context (4.1, 4.2): internal and external issues, interested parties and their requirements.
CREATE TABLE gov_context_items (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    requirements TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The SMS scope (4.3), one row per version.
CREATE TABLE gov_scopes (
    version INTEGER PRIMARY KEY,
    statement TEXT NOT NULL,
    services TEXT NOT NULL,
    locations TEXT NOT NULL,
    parties TEXT NOT NULL,
    exclusions TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Roles, responsibilities and authorities (5.3) and competence (7.2).
CREATE TABLE gov_roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    responsibilities TEXT NOT NULL,
    authorities TEXT NOT NULL,
    holders TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE gov_competences (
    id TEXT PRIMARY KEY,
    person TEXT NOT NULL,
    role_id TEXT,
    competence TEXT NOT NULL,
    evidence TEXT NOT NULL,
    acquired_on DATE NOT NULL,
    expires_on DATE,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- Risks and opportunities (6.1).
CREATE TABLE gov_risks (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    owner TEXT NOT NULL,
    likelihood INTEGER NOT NULL,
    impact INTEGER NOT NULL,
    score INTEGER NOT NULL,
    level TEXT NOT NULL,
    treatment TEXT NOT NULL,
    treatment_plan TEXT NOT NULL,
    treatment_owner TEXT NOT NULL,
    treatment_due DATE,
    state TEXT NOT NULL,
    review_interval_days INTEGER NOT NULL,
    last_reviewed_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Objectives (6.2) and their measured progress.
CREATE TABLE gov_objectives (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    measure TEXT NOT NULL,
    owner TEXT NOT NULL,
    baseline DOUBLE PRECISION NOT NULL,
    target DOUBLE PRECISION NOT NULL,
    unit TEXT NOT NULL,
    direction TEXT NOT NULL,
    current_value DOUBLE PRECISION,
    due_on DATE NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE gov_objective_progress (
    id TEXT PRIMARY KEY,
    objective_id TEXT NOT NULL REFERENCES gov_objectives (id),
    value DOUBLE PRECISION NOT NULL,
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);

-- Documented information (7.5): documents and their versions.
CREATE TABLE gov_documents (
    id TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    clauses TEXT NOT NULL,
    owner TEXT NOT NULL,
    access_roles TEXT NOT NULL,
    retention_years INTEGER NOT NULL,
    review_interval_days INTEGER NOT NULL,
    status TEXT NOT NULL,
    current_version INTEGER,
    approved_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE gov_document_versions (
    id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES gov_documents (id),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    change_summary TEXT NOT NULL,
    author TEXT NOT NULL,
    reviewers TEXT NOT NULL,
    approver TEXT NOT NULL,
    submitted_at TIMESTAMP,
    approved_at TIMESTAMP,
    instance_outcome TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (document_id, version)
);

-- Internal audit (9.2).
CREATE TABLE gov_audits (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    criteria TEXT NOT NULL,
    clauses TEXT NOT NULL,
    area TEXT NOT NULL,
    area_members TEXT NOT NULL,
    lead_auditor TEXT NOT NULL,
    auditors TEXT NOT NULL,
    planned_for DATE NOT NULL,
    state TEXT NOT NULL,
    checklist TEXT NOT NULL,
    report TEXT NOT NULL,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE gov_findings (
    id TEXT PRIMARY KEY,
    audit_id TEXT NOT NULL REFERENCES gov_audits (id),
    clause TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    evidence TEXT NOT NULL,
    nonconformity_id TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- Nonconformities and corrective action (10.1); improvement (10.2).
CREATE TABLE gov_nonconformities (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    source_ref TEXT NOT NULL UNIQUE,
    clause TEXT NOT NULL,
    description TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    reaction TEXT NOT NULL,
    root_cause TEXT NOT NULL,
    corrective_action TEXT NOT NULL,
    action_owner TEXT NOT NULL,
    action_due DATE,
    effective BOOLEAN,
    effectiveness_notes TEXT NOT NULL,
    raised_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE TABLE gov_improvements (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    source TEXT NOT NULL,
    benefit INTEGER,
    effort INTEGER,
    priority INTEGER,
    state TEXT NOT NULL,
    objective_id TEXT,
    plan TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_on DATE,
    expected TEXT NOT NULL,
    result TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Management review (9.3) and its actions.
CREATE TABLE gov_reviews (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    planned_for DATE NOT NULL,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    state TEXT NOT NULL,
    inputs TEXT NOT NULL,
    attendees TEXT NOT NULL,
    minutes TEXT NOT NULL,
    decisions TEXT NOT NULL,
    held_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE gov_actions (
    id TEXT PRIMARY KEY,
    review_id TEXT NOT NULL REFERENCES gov_reviews (id),
    description TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_on DATE,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

-- The audit ledger: every event of every service, in a gap-free sequence, each entry hashed
-- with the one before and signed; checkpoints vouch for the head.
CREATE TABLE gov_ledger (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor TEXT NOT NULL,
    time TIMESTAMP NOT NULL,
    payload_sha256 TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX gov_ledger_type_time ON gov_ledger (event_type, time);
CREATE TABLE gov_ledger_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO gov_ledger_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE gov_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signed_at TIMESTAMP NOT NULL
);
