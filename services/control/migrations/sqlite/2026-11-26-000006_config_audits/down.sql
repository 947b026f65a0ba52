DROP TABLE config_audits;
