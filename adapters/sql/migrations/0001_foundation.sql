-- Cabinets, users, login sessions, password tokens, sign-in throttling and the audit log.
-- Portable DDL: PostgreSQL types that SQLite accepts by affinity. Statements end with ";" at
-- the end of a line.

CREATE TABLE cabinets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('vendor', 'customer')),
    parent_id TEXT REFERENCES cabinets (id),
    path TEXT NOT NULL UNIQUE,
    external_id TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX cabinets_parent ON cabinets (parent_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('customer_user', 'customer_admin', 'staff', 'staff_admin')),
    cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    active BOOLEAN NOT NULL,
    password_hash TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX users_cabinet ON users (cabinet_id);

CREATE TABLE login_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX login_sessions_user ON login_sessions (user_id);

CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES login_sessions (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE password_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);

-- One counter per account or address: an upsert counts an attempt atomically.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX login_throttle_window_start ON login_throttle (window_start);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    actor_id TEXT,
    actor_email TEXT,
    object_type TEXT NOT NULL,
    object_id TEXT,
    cabinet_id TEXT,
    address TEXT,
    details JSONB NOT NULL
);
CREATE INDEX audit_log_cabinet ON audit_log (cabinet_id);
CREATE INDEX audit_log_object ON audit_log (object_id);
