-- The relationship service (ISO/IEC 20000-1 8.2.3, 8.3.2, 8.3.4).

-- Human numbers (CMP…, CON…): one row per kind.
CREATE TABLE rel_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO rel_counters (name, value) VALUES ('complaint', 1000), ('contract', 1000), ('dispute', 1000);

-- The catalogue as service-level publishes it.
CREATE TABLE rel_services (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL
);

-- Business relationship management (8.3.2).
CREATE TABLE rel_customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    account_manager TEXT NOT NULL,
    services TEXT NOT NULL,
    review_interval_days INTEGER NOT NULL,
    survey_interval_days INTEGER,
    notes TEXT NOT NULL,
    last_survey_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE rel_parties (
    id TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES rel_customers (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    user_id TEXT NOT NULL,
    requirements TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX rel_parties_customer ON rel_parties (customer_id);
CREATE TABLE rel_service_reviews (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES rel_customers (id),
    state TEXT NOT NULL,
    scheduled_for TIMESTAMP NOT NULL,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    agenda TEXT NOT NULL,
    performance TEXT NOT NULL,
    attendees TEXT NOT NULL,
    minutes TEXT NOT NULL,
    decisions TEXT NOT NULL,
    held_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX rel_service_reviews_customer ON rel_service_reviews (customer_id, held_at);

-- Follow-up actions of service reviews and supplier reviews, tracked to closure.
CREATE TABLE rel_actions (
    id TEXT PRIMARY KEY,
    source_kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    description TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_on DATE,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX rel_actions_source ON rel_actions (source_kind, source_id);

CREATE TABLE rel_complaints (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES rel_customers (id),
    service TEXT,
    raised_by TEXT NOT NULL,
    summary TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT,
    escalation_level INTEGER NOT NULL,
    due_at TIMESTAMP NOT NULL,
    investigation TEXT NOT NULL,
    action_taken TEXT NOT NULL,
    resolution TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    version BIGINT NOT NULL
);
CREATE INDEX rel_complaints_due ON rel_complaints (state, due_at);
CREATE TABLE rel_complaint_history (
    id TEXT PRIMARY KEY,
    complaint_id TEXT NOT NULL REFERENCES rel_complaints (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX rel_complaint_history_complaint ON rel_complaint_history (complaint_id, at);

-- Satisfaction: one survey per ticket, answered once through its signed link.
CREATE TABLE rel_surveys (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    ticket_id TEXT UNIQUE,
    ticket_number TEXT NOT NULL,
    service TEXT NOT NULL,
    customer TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    responded_at TIMESTAMP
);
CREATE TABLE rel_responses (
    id TEXT PRIMARY KEY,
    survey_id TEXT NOT NULL UNIQUE REFERENCES rel_surveys (id),
    score INTEGER NOT NULL,
    comment TEXT NOT NULL,
    service TEXT NOT NULL,
    customer TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX rel_responses_at ON rel_responses (at);

-- Supplier management (8.3.4, 8.2.3).
CREATE TABLE rel_suppliers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    customer_id TEXT REFERENCES rel_customers (id),
    manager TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    operates TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE rel_contracts (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    supplier_id TEXT NOT NULL REFERENCES rel_suppliers (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    scope TEXT NOT NULL,
    services TEXT NOT NULL,
    targets TEXT NOT NULL,
    roles TEXT NOT NULL,
    interfaces TEXT NOT NULL,
    starts_on DATE NOT NULL,
    ends_on DATE,
    notice_days INTEGER NOT NULL,
    value DOUBLE PRECISION,
    currency TEXT NOT NULL,
    owner TEXT NOT NULL,
    review_interval_days INTEGER NOT NULL,
    next_review_due DATE NOT NULL,
    state TEXT NOT NULL,
    expiry_notified BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX rel_contracts_supplier ON rel_contracts (supplier_id);
CREATE TABLE rel_measurements (
    id TEXT PRIMARY KEY,
    contract_id TEXT NOT NULL REFERENCES rel_contracts (id),
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    met BOOLEAN NOT NULL,
    notes TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX rel_measurements_contract ON rel_measurements (contract_id, period_to);
CREATE TABLE rel_disputes (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    contract_id TEXT NOT NULL REFERENCES rel_contracts (id),
    supplier_id TEXT NOT NULL REFERENCES rel_suppliers (id),
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL,
    raised_by TEXT NOT NULL,
    raised_at TIMESTAMP NOT NULL,
    resolution TEXT NOT NULL,
    resolved_by TEXT,
    resolved_at TIMESTAMP
);
CREATE TABLE rel_supplier_reviews (
    id TEXT PRIMARY KEY,
    supplier_id TEXT NOT NULL REFERENCES rel_suppliers (id),
    contract_id TEXT NOT NULL REFERENCES rel_contracts (id),
    state TEXT NOT NULL,
    period_from DATE NOT NULL,
    period_to DATE NOT NULL,
    scorecard TEXT NOT NULL,
    instance_id TEXT,
    outcome TEXT NOT NULL,
    ratings TEXT NOT NULL,
    assessment TEXT NOT NULL,
    signed_off_by TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);
CREATE INDEX rel_supplier_reviews_contract ON rel_supplier_reviews (contract_id, started_at);
