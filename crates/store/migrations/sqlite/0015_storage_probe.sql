-- One row, rewritten by the probe write that tells whether writes commit again after a
-- storage fault (a full disk, an I/O error, a cut connection): see the store's `write`.
CREATE TABLE storage_probe (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL -- a counter: each probe changes the row, so it must write
);
