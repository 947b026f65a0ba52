-- Which tickets an agreement times: incidents, service requests or both (JSON array).
ALTER TABLE sl_agreements ADD COLUMN applies_to TEXT NOT NULL DEFAULT '["incident","request"]';
