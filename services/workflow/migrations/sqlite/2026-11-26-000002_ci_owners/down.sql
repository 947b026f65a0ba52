DROP TABLE wf_ci_owners;
