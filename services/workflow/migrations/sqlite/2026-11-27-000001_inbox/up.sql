-- The inbox: who may claim each open, unassigned task (a copy of its candidates, kept while the
-- task is open and unassigned, removed when it is claimed, completed or withdrawn). A person's
-- claimable tasks are read from here by (kind, name), so the inbox costs what is open for them,
-- never what was ever created.
CREATE TABLE wf_inbox (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    task_id TEXT NOT NULL REFERENCES wf_tasks (id),
    PRIMARY KEY (kind, name, task_id)
);
CREATE INDEX wf_inbox_task ON wf_inbox (task_id);
INSERT INTO wf_inbox (kind, name, task_id)
    SELECT c.kind, c.name, c.task_id
    FROM wf_task_candidates c JOIN wf_tasks t ON t.id = c.task_id
    WHERE t.state = 'open' AND t.assignee IS NULL;
