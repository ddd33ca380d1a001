CREATE TABLE archive (
    id                INTEGER PRIMARY KEY,
    ts                INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    conversation_id   INTEGER,
    conversation_kind TEXT,
    event_id          INTEGER,
    actor             TEXT,
    body              TEXT,
    meta              TEXT    NOT NULL DEFAULT '',
    content_hash      TEXT    NOT NULL,
    prev_hash         TEXT    NOT NULL,
    hash              TEXT    NOT NULL,
    purged_at         INTEGER
);
CREATE INDEX archive_conversation ON archive(conversation_id, id);
CREATE INDEX archive_ts ON archive(ts);
CREATE TABLE archive_head (
    singleton INTEGER PRIMARY KEY,
    last_id   INTEGER NOT NULL,
    last_hash TEXT    NOT NULL
);
INSERT INTO archive_head (singleton, last_id, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE archive_participants (
    conversation_id INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX archive_participants_user ON archive_participants(user_id, conversation_id);
CREATE VIRTUAL TABLE archive_fts USING fts5(body, content='archive', content_rowid='id', tokenize='porter unicode61')
