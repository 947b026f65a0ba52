CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    correlation_id TEXT,
    causation_id TEXT,
    actor TEXT,
    payload BYTEA NOT NULL
);

CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    handled_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before TEXT,
    after TEXT,
    trace_id TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, at);
