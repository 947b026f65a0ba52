DROP TABLE sl_breaches;
DROP TABLE sl_clocks;
DROP TABLE sl_ticket_events;
DROP TABLE sl_agreements;
DROP TABLE sl_calendars;
DROP TABLE sl_services;
