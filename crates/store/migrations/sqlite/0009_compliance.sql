CREATE TABLE walls (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    group_a    INTEGER NOT NULL REFERENCES directory_groups(id),
    group_b    INTEGER NOT NULL REFERENCES directory_groups(id),
    mode       TEXT    NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE wall_violations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts              INTEGER NOT NULL,
    wall_id         INTEGER NOT NULL,
    mode            TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    actor_id        INTEGER NOT NULL,
    other_id        INTEGER NOT NULL,
    conversation_id INTEGER,
    detail          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX wall_violations_ts ON wall_violations(id);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          INTEGER NOT NULL,
    actor       TEXT,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    before_json TEXT,
    after_json  TEXT
);
CREATE TABLE disclaimers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    kinds      TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    frequency  TEXT    NOT NULL,
    texts      TEXT    NOT NULL,
    fallback   TEXT    NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE disclaimer_shown (
    rule_id  INTEGER NOT NULL,
    pair_key TEXT    NOT NULL,
    day      INTEGER NOT NULL,
    PRIMARY KEY (rule_id, pair_key, day)
);
CREATE TABLE retention_policies (
    scope TEXT    PRIMARY KEY,
    days  INTEGER NOT NULL
);
CREATE TABLE legal_holds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    custodian_id INTEGER NOT NULL REFERENCES users(id),
    reason       TEXT    NOT NULL DEFAULT '',
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    released_at  INTEGER
)
