-- Assets (8.2.5): licences and contracts, their quantities and expiry, and the CIs they cover.
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    vendor TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    expires_on DATE,
    cis TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX assets_expiry ON assets (expires_on);
