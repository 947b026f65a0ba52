DROP TABLE nt_deliveries;
DROP TABLE nt_webhooks;
DROP TABLE nt_link_tokens;
DROP TABLE nt_links;
DROP TABLE nt_notifications;
DROP TABLE nt_rules;
DROP TABLE nt_recipients;
