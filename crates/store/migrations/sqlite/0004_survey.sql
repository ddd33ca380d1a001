ALTER TABLE queue_chats ADD COLUMN survey_rating INTEGER;
ALTER TABLE queue_chats ADD COLUMN survey_comment TEXT
