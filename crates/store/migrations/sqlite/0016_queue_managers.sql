-- Who manages each queue (issue 10). Before, the queue_manager role managed every queue.
-- Upgraded installations keep what people could do: everyone with that role is named a
-- manager of every existing queue, and administrators narrow it from there.
CREATE TABLE queue_managers (
    queue_id TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, user_id)
);
INSERT INTO queue_managers (queue_id, user_id)
    SELECT q.id, u.id FROM queues q CROSS JOIN users u WHERE (',' || u.roles || ',') LIKE '%,queue_manager,%'
