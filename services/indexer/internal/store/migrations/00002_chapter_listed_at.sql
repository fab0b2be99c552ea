-- +goose Up
-- When the table of contents last listed a chapter ref (the fetched_at of its TOC page).
-- It keeps data from moving backwards when events of two syncs are redelivered out of
-- order: an older page never overwrites a ref a newer page wrote, and a sync's completion
-- never deletes refs that a later sync listed.
ALTER TABLE chapters ADD COLUMN listed_at timestamptz;

-- +goose Down
ALTER TABLE chapters DROP COLUMN listed_at;
