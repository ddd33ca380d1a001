DROP INDEX archive_conversation;
DROP INDEX archive_ts
