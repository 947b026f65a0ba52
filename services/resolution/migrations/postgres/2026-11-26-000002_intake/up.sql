-- Alerts from monitoring, deduplicated by fingerprint into one incident.
CREATE TABLE alert_links (
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (source, fingerprint)
);
CREATE INDEX alert_links_incident ON alert_links (incident_id);
