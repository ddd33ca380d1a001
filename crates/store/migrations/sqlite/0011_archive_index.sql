CREATE INDEX archive_conversation_ts ON archive(conversation_id, ts)
