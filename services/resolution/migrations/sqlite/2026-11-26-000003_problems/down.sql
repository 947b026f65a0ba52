DROP TABLE problem_activity;
DROP TABLE problem_incidents;
DROP TABLE problems;
DELETE FROM counters WHERE name = 'problem_number';
