-- Where a change came from, when another record raised it (e.g. `problem:PRB0001000`).
ALTER TABLE changes ADD COLUMN origin TEXT;
