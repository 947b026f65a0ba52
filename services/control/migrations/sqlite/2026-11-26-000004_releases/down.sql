DROP TABLE deployments;
DROP TABLE baselines;
DROP TABLE releases;
