DROP TABLE changes;
DROP SEQUENCE change_number_seq;
