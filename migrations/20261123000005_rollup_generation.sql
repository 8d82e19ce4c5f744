-- Bumped whenever stored rollups change behind the watermark (late results recomputed, rows
-- pruned, the watermark moved back): caches of closed chart buckets are valid for one generation.
alter table rollup_watermark add column generation bigint not null default 0;
