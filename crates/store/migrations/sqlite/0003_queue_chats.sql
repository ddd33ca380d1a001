CREATE TABLE queue_chats (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id        TEXT    NOT NULL,
    seeker_id       INTEGER NOT NULL REFERENCES users(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    question        TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    expert_id       INTEGER,
    requested_at    INTEGER NOT NULL,
    assigned_at     INTEGER,
    closed_at       INTEGER
);
CREATE INDEX queue_chats_queue ON queue_chats(queue_id, requested_at);
CREATE TABLE queue_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id  INTEGER NOT NULL,
    queue_id TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    expert_id INTEGER,
    ts       INTEGER NOT NULL
);
CREATE INDEX queue_events_chat ON queue_events(chat_id, id)
