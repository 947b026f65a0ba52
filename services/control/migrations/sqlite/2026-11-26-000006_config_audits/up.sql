-- Configuration audits (8.2.6): a verification of the CMDB against a baseline, its
-- discrepancies and how each was resolved.
CREATE TABLE config_audits (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    baseline_id TEXT NOT NULL REFERENCES baselines (id),
    status TEXT NOT NULL,
    discrepancies TEXT NOT NULL,
    run_by TEXT NOT NULL,
    run_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
