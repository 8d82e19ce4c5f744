-- A rollup run first claims its window [pending_from, pending_to) and moves the watermark in a
-- short transaction (the only moment writers wait), then rolls the window up without holding
-- the writers' lock and clears it. Readers treat rollups as complete up to pending_from while a
-- window is pending; a run that died half-way leaves it for the next run to finish.
alter table rollup_watermark add column pending_from timestamptz, add column pending_to timestamptz;
