CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    body         TEXT    NOT NULL DEFAULT '',
    priority     TEXT    NOT NULL,
    audience     TEXT    NOT NULL,
    ttl_ms       INTEGER NOT NULL,
    hold_offline INTEGER NOT NULL,
    ack_required INTEGER NOT NULL,
    escalation   TEXT,
    dedup_key    TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    escalated_at INTEGER
);
CREATE INDEX alerts_dedup ON alerts(source, dedup_key, expires_at);
CREATE INDEX alerts_created ON alerts(created_at);
CREATE TABLE alert_deliveries (
    alert_id        INTEGER NOT NULL REFERENCES alerts(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    state           TEXT    NOT NULL,
    round           INTEGER NOT NULL DEFAULT 0,
    conversation_id INTEGER,
    event_id        INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    read_at         INTEGER,
    acked_at        INTEGER,
    detail          TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (alert_id, user_id)
);
CREATE INDEX alert_deliveries_user ON alert_deliveries(user_id, state);
CREATE INDEX alert_deliveries_state ON alert_deliveries(state, alert_id)
