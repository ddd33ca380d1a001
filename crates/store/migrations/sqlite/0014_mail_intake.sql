-- One row per mail taken from a configured mailbox (issue 5): what became of it. A mail
-- seen again (after a restart or a dropped connection before it was removed or flagged)
-- is found here and not turned into a second alert. The row of an alert is written in
-- the alert's own transaction.
CREATE TABLE mail_intake (
    mailbox  TEXT    NOT NULL,
    mail_key TEXT    NOT NULL,
    sender   TEXT    NOT NULL DEFAULT '',
    subject  TEXT    NOT NULL DEFAULT '',
    outcome  TEXT    NOT NULL,
    alert_id INTEGER REFERENCES alerts(id),
    detail   TEXT    NOT NULL DEFAULT '',
    at       INTEGER NOT NULL,
    PRIMARY KEY (mailbox, mail_key)
);
CREATE INDEX mail_intake_at ON mail_intake(at);
