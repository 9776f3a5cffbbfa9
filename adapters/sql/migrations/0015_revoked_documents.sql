-- Revoked documents are few: the "revoked" filter walks these instead of every document.
CREATE INDEX licenses_revoked ON licenses (cabinet_id, id) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_revoked ON certificates (cabinet_id, id) WHERE revoked_at IS NOT NULL;
