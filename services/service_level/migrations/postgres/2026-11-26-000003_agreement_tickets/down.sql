ALTER TABLE sl_agreements DROP COLUMN applies_to;
