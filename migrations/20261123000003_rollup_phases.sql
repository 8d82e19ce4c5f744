-- Mean time per phase (DNS, connect, TLS, TTFB, transfer) on the latency chart: each rollup keeps
-- the phase sums of its timed checks and how many there were. Older rows have none (phase_n 0).
alter table rollups
    add column phase_sum_us bigint[] not null default '{0,0,0,0,0}',
    add column phase_n bigint not null default 0;
