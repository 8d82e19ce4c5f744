-- A new probe's state is `unknown` until its first confirmation, and that first change is
-- recorded from `unknown` (never as an `up → down` that did not happen).
alter table probe_state drop constraint probe_state_state_check;
alter table probe_state add constraint probe_state_state_check check (state in ('unknown', 'up', 'degraded', 'down'));
alter table state_changes add constraint state_changes_from_state_check
    check (from_state in ('unknown', 'up', 'degraded', 'down'));
