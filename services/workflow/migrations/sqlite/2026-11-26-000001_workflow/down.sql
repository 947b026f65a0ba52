DROP TABLE wf_history;
DROP TABLE wf_subscriptions;
DROP TABLE wf_timers;
DROP TABLE wf_decisions;
DROP TABLE wf_task_candidates;
DROP TABLE wf_tasks;
DROP TABLE wf_instances;
DROP TABLE wf_definitions;
