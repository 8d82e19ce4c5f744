-- Services, probes, their results and rollups.

create table services (
    service_id uuid primary key,
    name text not null unique check (length(name) between 1 and 200),
    description text not null default '',
    tags text[] not null default '{}',
    criticality text not null default 'medium' check (criticality in ('critical', 'high', 'medium', 'low')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- The probe's whole definition is kept as JSON (its format is pinned by tests); the columns
-- beside it are what queries filter or join on.
create table probes (
    probe_id uuid primary key,
    service_id uuid not null references services (service_id) on delete cascade,
    name text not null unique check (length(name) between 1 and 200),
    kind text not null check (kind in ('http', 'readiness', 'metrics', 'push')),
    enabled boolean not null default true,
    spec jsonb not null,
    file_managed boolean not null default false,
    -- SHA-256 of the push token; only push probes have one.
    push_token_sha256 bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index probes_service on probes (service_id);

create table probe_state (
    probe_id uuid primary key references probes (probe_id) on delete cascade,
    state text not null check (state in ('up', 'degraded', 'down')),
    since timestamptz not null,
    last_result_at timestamptz,
    last_outcome text,
    last_error text
);

create table state_changes (
    state_change_id bigint generated always as identity primary key,
    probe_id uuid not null references probes (probe_id) on delete cascade,
    at timestamptz not null,
    from_state text not null,
    to_state text not null,
    request_id text not null,
    error_class text
);
create index state_changes_probe_at on state_changes (probe_id, at);

-- Raw results, one partition a day (created ahead by the maintenance task); retention drops whole
-- partitions. No foreign key: deleting a probe must not scan months of results.
create table results (
    probe_id uuid not null,
    at timestamptz not null,
    outcome smallint not null,            -- 0 up, 1 degraded, 2 down
    status smallint,
    error_class smallint,                  -- index into ErrorClass::ALL
    dns_us integer,
    connect_us integer,
    tls_us integer,
    ttfb_us integer,
    transfer_us integer,
    total_us integer not null,
    response_bytes integer not null default 0,
    request_id text not null,
    detail text,
    body_excerpt text,
    cert_days_left integer,
    components jsonb,
    pool jsonb
) partition by range (at);
create index results_at_brin on results using brin (at);
create index results_probe_at on results (probe_id, at);

-- Push results carry an idempotency key (agent id + sequence): a retry finds its key and is
-- answered without a second row.
create table push_receipts (
    probe_id uuid not null references probes (probe_id) on delete cascade,
    agent_id text not null,
    seq bigint not null,
    at timestamptz not null,
    received_at timestamptz not null default now(),
    primary key (probe_id, agent_id, seq)
);

-- Rollups per probe at four levels (0 minute, 1 hour, 2 day, 3 week of 7 days from the epoch). The latency histogram is the
-- mergeable log-bucket histogram, encoded by stats::histogram (bucket index deltas and counts).
-- One partition per level keeps each level's rows together: a 30-day summary of 1,000 probes
-- reads 30,000 day rows, which would otherwise lie scattered among millions of minute rows.
create table rollups (
    level smallint not null,
    probe_id uuid not null,
    bucket timestamptz not null,
    n_up integer not null,
    n_degraded integer not null,
    n_down integer not null,
    errors integer[] not null,            -- counts by ErrorClass::ALL index
    lat_hist bytea not null,
    lat_count bigint not null,
    lat_sum_us bigint not null,
    lat_min_us bigint not null,
    lat_max_us bigint not null,
    pool_in_use double precision,         -- highest
    pool_idle double precision,           -- lowest
    pool_max double precision,            -- highest
    pool_waiting double precision,        -- highest
    req_rate_sum double precision not null default 0,
    err_rate_sum double precision not null default 0,
    rate_samples integer not null default 0,
    primary key (level, probe_id, bucket)
) partition by list (level);
-- Hour, day and week rows are rewritten by every rollup run: room on each page for HOT updates.
create table rollups_minute partition of rollups for values in (0);
create table rollups_hour partition of rollups for values in (1) with (fillfactor = 70);
create table rollups_day partition of rollups for values in (2) with (fillfactor = 70);
create table rollups_week partition of rollups for values in (3) with (fillfactor = 70);

-- Raw results up to `watermark` are in the minute rollups. Writers read it (for share) in the
-- same transaction as their insert, so a result older than the watermark is known to be late
-- and its minute is queued in rollup_dirty to be recomputed.
create table rollup_watermark (
    singleton boolean primary key default true check (singleton),
    watermark timestamptz not null
);
insert into rollup_watermark (watermark) values (date_trunc('minute', now()));

create table rollup_dirty (
    probe_id uuid not null,
    minute timestamptz not null,
    primary key (probe_id, minute)
);
