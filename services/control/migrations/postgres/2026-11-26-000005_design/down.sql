ALTER TABLE changes DROP COLUMN design;
