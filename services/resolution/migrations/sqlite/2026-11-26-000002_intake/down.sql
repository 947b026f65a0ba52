DROP TABLE alert_links;
