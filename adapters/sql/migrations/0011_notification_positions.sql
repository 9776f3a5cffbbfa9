-- Notifications are numbered by one counter for the whole portal instead of one per user:
-- bumping thousands of user rows made an announcement to thousands slow to reach anyone.
-- The counter's single row is locked from the moment a transaction takes a number until it
-- commits, so numbers are committed in order and a stream that has seen n has seen every
-- number below n that was meant for it. Existing numbers stay; new ones start above every
-- number a stream can have seen (a user's counter may be above their newest notification,
-- if they deleted it). Every portal process must run this version: the events between
-- processes changed with it.
CREATE TABLE notification_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO notification_clock (id, position)
SELECT 1, MAX(n) FROM (SELECT COALESCE(MAX(seq), 0) AS n FROM notifications
                       UNION ALL SELECT COALESCE(MAX(notification_seq), 0) FROM users) AS seen;
CREATE INDEX notifications_position ON notifications (seq);
ALTER TABLE users DROP COLUMN notification_seq;

-- A message to many users, stored once when it is made, and spread into each user's
-- notifications and the outbox just after (and by any reader who comes first).
-- users and audience are JSON arrays of user ids.
CREATE TABLE notification_batches (
    position BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    users TEXT NOT NULL,
    audience TEXT NOT NULL
);
