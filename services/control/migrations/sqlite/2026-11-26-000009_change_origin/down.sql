ALTER TABLE changes DROP COLUMN origin;
