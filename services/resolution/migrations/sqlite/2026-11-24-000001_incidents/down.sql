DROP TABLE catalogue_services;
DROP TABLE incident_activity;
DROP TABLE incidents;
DROP TABLE counters;
