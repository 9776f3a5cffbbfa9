-- Purchase events from the billing system: each event id is applied once, and its outcome
-- is kept to answer a repeat of the same event.
CREATE TABLE purchase_events (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    outcome JSONB
);
