DROP TABLE request_history;
DROP TABLE requests;
DROP TABLE request_items;
DROP SEQUENCE request_number_seq;
