-- Releases of products, found in the object store or registered by staff, and their files.
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id),
    version TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('release', 'update', 'fix', 'security')),
    title TEXT NOT NULL,
    notes TEXT NOT NULL,
    advisories JSONB NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    yanked_at TIMESTAMPTZ,
    UNIQUE (product_id, version)
);
CREATE INDEX releases_product_published ON releases (product_id, published_at);

CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (id),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('image', 'update', 'doc')),
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    sha256 TEXT,
    crc32 BIGINT
);
CREATE INDEX artifacts_release ON artifacts (release_id);
