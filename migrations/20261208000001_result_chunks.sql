-- Raw results older than a few hours, compacted: one row per probe and hour, the hour's results
-- in the binary form of storage::chunk (about 27 bytes each, against about 275 for a row with
-- its index). Results arriving for a compacted hour stay in `results` until the next compaction
-- merges them in; readers read both.
create table result_chunks (
    probe_id uuid not null,
    hour timestamptz not null,
    n integer not null,
    data bytea not null,
    primary key (probe_id, hour)
);
-- The rollup run and retention read chunks by time across all probes.
create index result_chunks_hour on result_chunks (hour);
-- The binary form is incompressible (request ids are random): skip the attempt.
alter table result_chunks alter column data set storage external;

-- Raw results are compacted hour by hour up to here; a day's partition wholly before it is
-- emptied into chunks and dropped.
alter table rollup_watermark add column compacted_until timestamptz;
-- Results for a day whose partition is gone (compacted, or past retention, or an agent's clock
-- far off) land here instead of failing; compaction empties it into chunks.
create table results_default partition of results default;
