CREATE TABLE queues (
    id               TEXT    PRIMARY KEY,
    display_name     TEXT    NOT NULL,
    address          TEXT    NOT NULL UNIQUE,
    description      TEXT    NOT NULL DEFAULT '',
    method           TEXT    NOT NULL,
    offer_timeout_ms BIGINT  NOT NULL,
    capacity         BIGINT  NOT NULL,
    daily_cap        BIGINT,
    max_wait_ms      BIGINT,
    enabled          BIGINT  NOT NULL DEFAULT 1,
    closed           BIGINT  NOT NULL DEFAULT 0,
    welcome          TEXT    NOT NULL DEFAULT '',
    closed_message   TEXT    NOT NULL DEFAULT '',
    show_expert_name BIGINT  NOT NULL DEFAULT 1,
    updated_at       BIGINT  NOT NULL
);
CREATE TABLE queue_members (
    queue_id TEXT    NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id  BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    priority BIGINT  NOT NULL DEFAULT 0,
    skills   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (queue_id, user_id)
)
