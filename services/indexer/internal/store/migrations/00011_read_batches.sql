-- +goose Up
-- Read-count reports already added to books.read_count, so that a redelivered report
-- counts once. Pruned with the job history.
CREATE TABLE read_batches (
    batch_id   text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE read_batches;
