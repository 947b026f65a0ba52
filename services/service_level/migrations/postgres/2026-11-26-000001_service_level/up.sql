-- The service catalogue (8.2.4).
CREATE TABLE sl_services (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    description TEXT NOT NULL,
    outcome TEXT NOT NULL,
    customers TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    configuration_items TEXT NOT NULL,
    criticality TEXT NOT NULL,
    status TEXT NOT NULL,
    request_items TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Business calendars: working hours per weekday in a time zone, holidays.
CREATE TABLE sl_calendars (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    week TEXT NOT NULL,
    holidays TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- SLAs with customers and OLAs with internal groups (8.3.3).
CREATE TABLE sl_agreements (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    customer TEXT,
    group_name TEXT,
    calendar_id TEXT NOT NULL REFERENCES sl_calendars (id),
    targets TEXT NOT NULL,
    warning_percent INTEGER NOT NULL,
    pause_reasons TEXT NOT NULL,
    workload_limit TEXT NOT NULL,
    exceptions TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sl_agreements_service ON sl_agreements (service, active);

-- Each ticket event as it arrived from resolution: the history clocks are computed from.
CREATE TABLE sl_ticket_events (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    ticket_kind TEXT NOT NULL,
    number TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    pending_reason TEXT NOT NULL,
    priority INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    service TEXT NOT NULL,
    major BOOLEAN NOT NULL
);
CREATE INDEX sl_ticket_events_ticket ON sl_ticket_events (ticket_id, at);
CREATE INDEX sl_ticket_events_at ON sl_ticket_events (at);

-- The clocks as last computed, with when they need looking at next (warning, breach).
CREATE TABLE sl_clocks (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    number TEXT NOT NULL,
    agreement_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    service TEXT NOT NULL,
    priority INTEGER NOT NULL,
    target_seconds BIGINT NOT NULL,
    elapsed_seconds BIGINT NOT NULL,
    stage TEXT NOT NULL,
    due_at TIMESTAMP,
    warn_at TIMESTAMP,
    stopped_at TIMESTAMP,
    warned BOOLEAN NOT NULL,
    breached BOOLEAN NOT NULL,
    next_check TIMESTAMP,
    computed_at TIMESTAMP NOT NULL,
    UNIQUE (ticket_id, agreement_id, metric)
);
CREATE INDEX sl_clocks_next_check ON sl_clocks (next_check);
CREATE INDEX sl_clocks_service ON sl_clocks (service, stage);

-- Breaches, to be investigated: the cause is recorded.
CREATE TABLE sl_breaches (
    id TEXT PRIMARY KEY,
    clock_id TEXT NOT NULL UNIQUE,
    ticket_id TEXT NOT NULL,
    number TEXT NOT NULL,
    agreement_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    service TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    cause TEXT,
    cause_category TEXT,
    investigated_by TEXT,
    investigated_at TIMESTAMP
);
CREATE INDEX sl_breaches_service ON sl_breaches (service, due_at);
