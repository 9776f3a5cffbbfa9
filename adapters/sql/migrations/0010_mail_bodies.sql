-- One copy of a text that many e-mails share (an announcement to thousands of users): their
-- outbox rows point at it instead of each holding it. Keyed by a hash of the text.
CREATE TABLE mail_bodies (
    id TEXT PRIMARY KEY,
    text_body TEXT NOT NULL,
    html_body TEXT
);
ALTER TABLE outbox ADD COLUMN body_id TEXT REFERENCES mail_bodies (id);
