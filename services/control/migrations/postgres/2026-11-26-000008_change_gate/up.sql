-- Every decision of the change gate (the Kubernetes admission webhook), once per review uid.
CREATE TABLE gate_decisions (
    id TEXT PRIMARY KEY,
    review_uid TEXT NOT NULL UNIQUE,
    decided_at TIMESTAMP NOT NULL,
    username TEXT NOT NULL,
    groups TEXT NOT NULL,
    operation TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    break_glass BOOLEAN NOT NULL,
    dry_run BOOLEAN NOT NULL,
    change_id TEXT,
    reason TEXT NOT NULL
);
CREATE INDEX gate_decisions_at ON gate_decisions (decided_at, id);
CREATE INDEX gate_decisions_change ON gate_decisions (change_id, decided_at);
