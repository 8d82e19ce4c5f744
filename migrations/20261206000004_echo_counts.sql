-- ICMP checks keep how many echoes went out and came back, so charts show loss % over any range
-- (a rollup's loss is its lost echoes over its sent echoes, which merges exactly).
alter table results add column echo_sent smallint, add column echo_received smallint;
alter table rollups add column echo_sent bigint not null default 0, add column echo_lost bigint not null default 0;
