CREATE SEQUENCE change_number_seq START 1000;

-- Changes (8.5.1): the record, its plans, its window and the decision on it.
CREATE TABLE changes (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    template TEXT,
    requester TEXT NOT NULL,
    configuration_items TEXT NOT NULL,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    implementation_plan TEXT NOT NULL,
    test_plan TEXT NOT NULL,
    backout_plan TEXT NOT NULL,
    state TEXT NOT NULL,
    decision TEXT,
    review TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX changes_state ON changes (state, id);
CREATE INDEX changes_window ON changes (window_start, window_end);
