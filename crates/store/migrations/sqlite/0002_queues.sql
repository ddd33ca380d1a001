CREATE TABLE queues (
    id               TEXT    PRIMARY KEY,
    display_name     TEXT    NOT NULL,
    address          TEXT    NOT NULL UNIQUE,
    description      TEXT    NOT NULL DEFAULT '',
    method           TEXT    NOT NULL,
    offer_timeout_ms INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    daily_cap        INTEGER,
    max_wait_ms      INTEGER,
    enabled          INTEGER NOT NULL DEFAULT 1,
    closed           INTEGER NOT NULL DEFAULT 0,
    welcome          TEXT    NOT NULL DEFAULT '',
    closed_message   TEXT    NOT NULL DEFAULT '',
    show_expert_name INTEGER NOT NULL DEFAULT 1,
    updated_at       INTEGER NOT NULL
);
CREATE TABLE queue_members (
    queue_id TEXT    NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    priority INTEGER NOT NULL DEFAULT 0,
    skills   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (queue_id, user_id)
)
