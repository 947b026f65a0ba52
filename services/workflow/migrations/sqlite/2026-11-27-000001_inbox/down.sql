DROP TABLE wf_inbox;
