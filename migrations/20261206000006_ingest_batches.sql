-- The writer's batches, by id, written in the same transaction as their results: a batch whose
-- COMMIT succeeded but whose answer was lost (a connection cut at the wrong moment) is retried
-- with the same id and recognised, so no result or state change is stored twice.
create table ingest_batches (
    batch_id uuid primary key,
    written_at timestamptz not null default now()
);
