-- The people the notifier reaches: how, when, and the roles and groups rules address.
CREATE TABLE nt_recipients (
    user_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT,
    slack_webhook TEXT,
    teams_webhook TEXT,
    roles TEXT NOT NULL,
    groups TEXT NOT NULL,
    channel TEXT NOT NULL,
    quiet_start TEXT,
    quiet_end TEXT,
    timezone TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Routing rules: which event, which audience, which channel.
CREATE TABLE nt_rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    event_pattern TEXT NOT NULL,
    audience_kind TEXT NOT NULL,
    audience TEXT NOT NULL,
    channel TEXT NOT NULL,
    destination TEXT,
    urgent BOOLEAN NOT NULL,
    subject_template TEXT,
    body_template TEXT,
    enabled BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Every notification with its delivery state. The body is rendered when it is sent, so an
-- action link's token is never stored.
CREATE TABLE nt_notifications (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    template TEXT NOT NULL,
    title TEXT NOT NULL,
    context TEXT NOT NULL,
    link_id TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    UNIQUE (event_id, recipient, channel, destination)
);
CREATE INDEX nt_notifications_due ON nt_notifications (state, next_attempt_at);
CREATE INDEX nt_notifications_recipient ON nt_notifications (recipient, id);

-- One-click action links: one per task and approver, single use.
CREATE TABLE nt_links (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    definition TEXT NOT NULL,
    business_key TEXT NOT NULL,
    title TEXT NOT NULL,
    outcomes TEXT NOT NULL,
    summary TEXT NOT NULL,
    form TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    outcome TEXT,
    comment TEXT,
    result TEXT,
    result_code TEXT,
    result_detail TEXT,
    decided_at TIMESTAMP,
    void_reason TEXT,
    UNIQUE (task_id, approver)
);

-- The tokens of a link (one per message sent), kept only as SHA-256 hashes.
CREATE TABLE nt_link_tokens (
    token_hash TEXT PRIMARY KEY,
    link_id TEXT NOT NULL REFERENCES nt_links (id),
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX nt_link_tokens_link ON nt_link_tokens (link_id);

-- Outbound webhook subscriptions of integrators.
CREATE TABLE nt_webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    description TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- The delivery log of each subscription.
CREATE TABLE nt_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES nt_webhooks (id),
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    response_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX nt_deliveries_due ON nt_deliveries (state, next_attempt_at);
CREATE INDEX nt_deliveries_webhook ON nt_deliveries (webhook_id, id);
