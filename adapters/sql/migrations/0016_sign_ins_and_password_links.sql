-- When each user last signed in: administrators see who uses the portal and who never did.
ALTER TABLE users ADD COLUMN last_sign_in_at TIMESTAMPTZ;
-- When each set-password link was made: "forgot your password" sends an account only a few
-- an hour. (Links made before this migration have none and count as old.)
ALTER TABLE password_tokens ADD COLUMN created_at TIMESTAMPTZ;
