-- Licenses, support certificates and their transfer history.
CREATE TABLE licenses (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    product_id TEXT NOT NULL REFERENCES products (id),
    cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    edition TEXT NOT NULL,
    seats INTEGER NOT NULL,
    valid_from DATE NOT NULL,
    valid_to DATE,
    revoked_at TIMESTAMPTZ,
    purchase_item TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX licenses_cabinet ON licenses (cabinet_id);
CREATE INDEX licenses_valid_to ON licenses (valid_to);

CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    product_id TEXT NOT NULL REFERENCES products (id),
    cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    level TEXT NOT NULL,
    license_id TEXT REFERENCES licenses (id),
    valid_from DATE NOT NULL,
    valid_to DATE,
    revoked_at TIMESTAMPTZ,
    purchase_item TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX certificates_cabinet ON certificates (cabinet_id);
CREATE INDEX certificates_valid_to ON certificates (valid_to);

CREATE TABLE document_transfers (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('license', 'certificate')),
    document_id TEXT NOT NULL,
    from_cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    to_cabinet_id TEXT NOT NULL REFERENCES cabinets (id),
    at TIMESTAMPTZ NOT NULL,
    actor_id TEXT,
    actor_email TEXT
);
CREATE INDEX document_transfers_document ON document_transfers (document_id);
