DROP TABLE problem_activity;
DROP TABLE problem_incidents;
DROP TABLE problems;
DROP SEQUENCE problem_number_seq;
