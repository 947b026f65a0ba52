DROP TABLE request_history;
DROP TABLE requests;
DROP TABLE request_items;
DELETE FROM counters WHERE name = 'request_number';
