-- Remote agents and the locations probes run from.

-- Null: checked by the server itself (the location "local"); most results, so it costs nothing.
alter table results add column location text;

-- A probe run from several locations changes state by quorum; the note names the locations.
alter table state_changes add column quorum jsonb;

alter table api_tokens drop constraint api_tokens_scope_check;
alter table api_tokens add constraint api_tokens_scope_check check (scope in ('push', 'read', 'admin', 'agent'));

-- The confirmation state of each (probe, location) of a multi-location probe, with the runs the
-- state machine has counted so far: results of one probe may be judged on any replica, one at
-- a time under the probe's advisory lock, each from what the previous one stored.
create table probe_locations (
    probe_id uuid not null references probes (probe_id) on delete cascade,
    location text not null,
    state text check (state in ('up', 'degraded', 'down')),
    since timestamptz not null,
    at_least integer[] not null,
    at_most integer[] not null,
    last_result_at timestamptz,
    last_outcome text,
    last_error text,
    primary key (probe_id, location)
);

-- Agents as they last reported. The id is the agent's own (kept in its spool directory); the
-- token is what lets it in, and revoking the token shuts it out.
create table agents (
    agent_id uuid primary key,
    token_id uuid not null references api_tokens (token_id) on delete cascade,
    location text not null,
    version text not null,
    first_seen timestamptz not null default now(),
    last_seen timestamptz not null default now(),
    -- When a replica last confirmed its stream of assignments open.
    stream_seen timestamptz,
    lag_ms bigint not null default 0,
    buffered bigint not null default 0,
    dropped bigint not null default 0,
    clock_offset_ms bigint not null default 0
);
create index agents_location on agents (location);
