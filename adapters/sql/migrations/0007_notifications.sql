-- Notifications per recipient. Each user's are numbered 1, 2, 3... by a counter on the user
-- row, taken under that row's lock, so numbers become visible in order and a live stream
-- can resume "after n" with no gaps.
ALTER TABLE users ADD COLUMN notification_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ,
    UNIQUE (user_id, seq)
);
CREATE INDEX notifications_unread ON notifications (user_id, read_at);

CREATE TABLE notification_settings (
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    in_app BOOLEAN NOT NULL,
    email BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, kind)
);
