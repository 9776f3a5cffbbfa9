-- When each user last signed in: administrators see who uses the portal and who never did.
ALTER TABLE users ADD COLUMN last_sign_in_at TIMESTAMPTZ;
