-- Scheduled reports: what a user asked to be sent, and the periods already sent (the
-- primary key makes each period's report once, whichever process finds it due).
CREATE TABLE report_subscriptions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    cabinet_id TEXT REFERENCES cabinets (id),
    kind TEXT NOT NULL CHECK (kind IN ('licenses', 'certificates', 'issues')),
    format TEXT NOT NULL CHECK (format IN ('csv', 'xlsx', 'pdf')),
    cadence TEXT NOT NULL CHECK (cadence IN ('weekly', 'monthly')),
    include_children BOOLEAN NOT NULL,
    product_id TEXT REFERENCES products (id),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX report_subscriptions_user ON report_subscriptions (user_id, created_at);

CREATE TABLE report_periods (
    subscription_id TEXT NOT NULL REFERENCES report_subscriptions (id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, period)
);
