-- Releases (8.5.3): approved changes grouped, with acceptance criteria and test results.
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    changes TEXT NOT NULL,
    acceptance_criteria TEXT NOT NULL,
    test_results TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Baselines: a snapshot of a set of CIs.
CREATE TABLE baselines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    taken_by TEXT NOT NULL,
    taken_at TIMESTAMP NOT NULL
);

-- Deployments of releases to environments.
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (id),
    environment TEXT NOT NULL,
    outcome TEXT NOT NULL,
    notes TEXT NOT NULL,
    baseline_id TEXT NOT NULL REFERENCES baselines (id),
    deployed_by TEXT NOT NULL,
    deployed_at TIMESTAMP NOT NULL
);
CREATE INDEX deployments_release ON deployments (release_id, deployed_at);
