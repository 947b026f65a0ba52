CREATE SEQUENCE request_number_seq START 1000;
-- The request items the catalogue offers, kept from service_level.service.* events.
CREATE TABLE request_items (
    service_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    fields TEXT NOT NULL,
    workflow TEXT,
    needs_approval BOOLEAN NOT NULL,
    PRIMARY KEY (service_id, id)
);

-- Service requests (8.6.2) and their history.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    service_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    item_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_for TEXT NOT NULL,
    fields TEXT NOT NULL,
    state TEXT NOT NULL,
    needs_approval BOOLEAN NOT NULL,
    workflow TEXT,
    approved_by TEXT,
    notes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX requests_state ON requests (state, id);
CREATE INDEX requests_requested_by ON requests (requested_by, id);
CREATE INDEX requests_requested_for ON requests (requested_for, id);

CREATE TABLE request_history (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX request_history_request ON request_history (request_id, at, id);
