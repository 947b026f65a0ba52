DROP TABLE changes;
DROP TABLE counters;
