DROP TABLE known_cis;
