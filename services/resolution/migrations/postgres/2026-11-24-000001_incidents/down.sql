DROP TABLE catalogue_services;
DROP TABLE incident_activity;
DROP TABLE incidents;
DROP SEQUENCE incident_number_seq;
