-- path LIKE 'prefix%' can use a btree index under any collation only with the pattern
-- operator class; every subtree (tenant) query filters this way.
CREATE INDEX cabinets_path_prefix ON cabinets (path text_pattern_ops);
