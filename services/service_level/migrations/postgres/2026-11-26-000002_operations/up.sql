-- Availability (8.7.1): targets per service and outages, planned or not.
CREATE TABLE sl_availability_targets (
    service TEXT PRIMARY KEY,
    target_percent DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE sl_outages (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    planned BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    ticket_id TEXT,
    description TEXT NOT NULL,
    investigation TEXT,
    recorded_by TEXT NOT NULL
);
CREATE INDEX sl_outages_service ON sl_outages (service, started_at);

-- Continuity (8.7.2): plans, their tests and invocations.
CREATE TABLE sl_continuity_plans (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    strategy TEXT NOT NULL,
    rto_minutes INTEGER NOT NULL,
    rpo_minutes INTEGER NOT NULL,
    test_interval_days INTEGER NOT NULL,
    owner TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE sl_continuity_events (
    id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES sl_continuity_plans (id),
    kind TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    scenario TEXT NOT NULL,
    result TEXT NOT NULL,
    notes TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX sl_continuity_events_plan ON sl_continuity_events (plan_id, at);

-- Capacity and demand (8.4.1, 8.4.2): plans with requirements and thresholds, measurements,
-- forecasts.
CREATE TABLE sl_capacity_plans (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    human TEXT NOT NULL,
    technical TEXT NOT NULL,
    financial TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    owner TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE sl_measurements (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at TIMESTAMP NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX sl_measurements_series ON sl_measurements (service, metric, at);
CREATE TABLE sl_forecasts (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    period TEXT NOT NULL,
    metric TEXT NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    notes TEXT NOT NULL,
    UNIQUE (service, period, metric)
);

-- Budgeting and accounting (8.4.3).
CREATE TABLE sl_budgets (
    service TEXT NOT NULL,
    period TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (service, period)
);
CREATE TABLE sl_costs (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    period TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    incurred_on DATE NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX sl_costs_service ON sl_costs (service, period);

-- Read models for reporting: changes (from control) and satisfaction (from relationship).
CREATE TABLE sl_changes (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    configuration_items TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE sl_satisfaction (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    customer TEXT NOT NULL,
    score INTEGER NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX sl_satisfaction_service ON sl_satisfaction (service, at);
