-- The billing contact of a customer, as the purchases feed names it: shown on the
-- organisation's page and offered there as its first invitation.
ALTER TABLE cabinets ADD COLUMN contact_email TEXT;
