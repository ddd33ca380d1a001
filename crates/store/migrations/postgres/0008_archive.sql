CREATE TABLE archive (
    id                BIGINT PRIMARY KEY,
    ts                BIGINT NOT NULL,
    kind              TEXT   NOT NULL,
    conversation_id   BIGINT,
    conversation_kind TEXT,
    event_id          BIGINT,
    actor             TEXT,
    body              TEXT,
    meta              TEXT   NOT NULL DEFAULT '',
    content_hash      TEXT   NOT NULL,
    prev_hash         TEXT   NOT NULL,
    hash              TEXT   NOT NULL,
    purged_at         BIGINT,
    tsv               tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(body, ''))) STORED
);
CREATE INDEX archive_conversation ON archive(conversation_id, id);
CREATE INDEX archive_ts ON archive(ts);
CREATE INDEX archive_tsv ON archive USING GIN (tsv);
CREATE TABLE archive_head (
    singleton INTEGER PRIMARY KEY,
    last_id   BIGINT NOT NULL,
    last_hash TEXT   NOT NULL
);
INSERT INTO archive_head (singleton, last_id, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE archive_participants (
    conversation_id BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX archive_participants_user ON archive_participants(user_id, conversation_id)
