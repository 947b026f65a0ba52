-- The CMDB as resolution needs it, kept from control.ci.changed events: a CI named by its name
-- on an incident or a problem is recorded by its id.
CREATE TABLE known_cis (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    class TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX known_cis_name ON known_cis (name);
