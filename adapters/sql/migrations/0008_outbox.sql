-- E-mail to send, written in the same transaction as the change that causes it and sent by
-- a worker afterwards. A row is leased (locked_until) while a worker sends it, so two
-- workers never send the same one; a worker that dies mid-send leaves it to the next after
-- the lease.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    sent_at TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
