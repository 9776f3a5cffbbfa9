-- Support requests: the portal's own record of each (whatever helpdesk works it), its
-- conversation and files, and the queue that delivers them to the helpdesk.
CREATE TABLE support_issues (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    author_id TEXT REFERENCES users (id),
    author_name TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    level TEXT NOT NULL,
    license_id TEXT REFERENCES licenses (id),
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'open', 'waiting_for_customer', 'on_hold',
                                           'resolved', 'closed')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id TEXT REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    first_response_due TIMESTAMPTZ NOT NULL,
    resolution_due TIMESTAMPTZ NOT NULL,
    first_response_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    external_id TEXT UNIQUE,
    external_status TEXT,
    delivery TEXT NOT NULL CHECK (delivery IN ('pending', 'delivered', 'failed')),
    delivery_error TEXT
);
CREATE INDEX support_issues_cabinet ON support_issues (cabinet_id, id);
CREATE INDEX support_issues_status ON support_issues (status, id);

CREATE TABLE support_comments (
    id TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL REFERENCES support_issues (id),
    author_id TEXT REFERENCES users (id),
    author_name TEXT NOT NULL,
    by_staff BOOLEAN NOT NULL,
    body TEXT NOT NULL,
    public BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    external_id TEXT,
    delivery TEXT NOT NULL CHECK (delivery IN ('pending', 'delivered', 'failed')),
    UNIQUE (issue_id, external_id)
);
CREATE INDEX support_comments_issue ON support_comments (issue_id, created_at);

CREATE TABLE support_attachments (
    id TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL REFERENCES support_issues (id),
    comment_id TEXT REFERENCES support_comments (id),
    uploader_id TEXT REFERENCES users (id),
    by_staff BOOLEAN NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ,
    external_id TEXT,
    delivery TEXT NOT NULL CHECK (delivery IN ('pending', 'delivered', 'failed')),
    UNIQUE (issue_id, external_id)
);
CREATE INDEX support_attachments_issue ON support_attachments (issue_id, created_at);

-- Leased like the outbox's rows: two workers never deliver the same one.
CREATE TABLE support_deliveries (
    id TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL REFERENCES support_issues (id),
    kind TEXT NOT NULL CHECK (kind IN ('ticket', 'update', 'comment', 'attachment')),
    object_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT
);
CREATE INDEX support_deliveries_due ON support_deliveries (status, next_attempt_at);
CREATE INDEX support_deliveries_issue ON support_deliveries (issue_id, status);

-- Where reconciliation got to with each helpdesk.
CREATE TABLE support_cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
