-- The owner of each configuration item, kept from control.ci.changed events, for tasks assigned
-- to a CI's owner.
CREATE TABLE wf_ci_owners (
    ci_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    revision BIGINT NOT NULL
);
