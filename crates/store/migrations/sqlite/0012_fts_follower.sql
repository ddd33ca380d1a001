CREATE TABLE archive_fts_head (
    singleton INTEGER PRIMARY KEY,
    last_id   INTEGER NOT NULL
);
INSERT INTO archive_fts_head (singleton, last_id) SELECT 1, COALESCE(MAX(id), 0) FROM archive
