ALTER TABLE queue_chats ADD COLUMN survey_rating BIGINT;
ALTER TABLE queue_chats ADD COLUMN survey_comment TEXT
