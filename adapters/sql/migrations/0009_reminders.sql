-- Expiry reminders already sent: one row per document, end date and stage (days before the
-- end date; 0: expired). The primary key makes each reminder once, whichever process or run
-- finds it due; a document whose end date moves (a renewal) is reminded again.
CREATE TABLE expiry_reminders (
    document_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('license', 'certificate')),
    valid_to DATE NOT NULL,
    stage INTEGER NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (document_id, valid_to, stage)
);
