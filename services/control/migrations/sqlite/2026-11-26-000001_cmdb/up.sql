-- Configuration items: typed, owned, with attributes checked against their type's schema.
CREATE TABLE cis (
    id TEXT PRIMARY KEY,
    ci_type TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    environment TEXT NOT NULL,
    criticality TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX cis_type ON cis (ci_type, id);
CREATE INDEX cis_owner ON cis (owner, id);
CREATE INDEX cis_name ON cis (name, id);

-- Typed, directional relations: `source` <kind> `target` (an app runs_on a server).
CREATE TABLE ci_relations (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL REFERENCES cis (id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL REFERENCES cis (id),
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (source, kind, target)
);
CREATE INDEX ci_relations_target ON ci_relations (target, source);
CREATE INDEX ci_relations_source ON ci_relations (source, target);
