ALTER TABLE queues ADD COLUMN overflow_queue TEXT;
ALTER TABLE queues ADD COLUMN no_expert_queue TEXT
