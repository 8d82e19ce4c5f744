-- Incidents, their timelines and the link from probe state changes to them (issue 6).

create table incidents (
    incident_id uuid primary key,
    -- A short number people say out loud ("incident 42"); the id stays the handle for the API.
    number bigint generated always as identity unique,
    title text not null check (length(title) between 1 and 200),
    severity text not null check (severity in ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
    status text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved')),
    commander_id uuid references users (user_id) on delete set null,
    summary text not null default '',
    -- Key times, each with its source: 'automatic' or the email of whoever set it.
    started_at timestamptz,
    started_by text,
    detected_at timestamptz,
    detected_by text,
    acknowledged_at timestamptz,
    acknowledged_by text,
    mitigated_at timestamptz,
    mitigated_by text,
    resolved_at timestamptz,
    resolved_by text,
    -- Opened by Triage from a failing probe rather than by a person.
    automatic boolean not null default false,
    -- Set when every affected probe has been healthy long enough; a commander decides.
    resolve_suggested_at timestamptz,
    created_by text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index incidents_open on incidents (created_at desc) where status <> 'resolved';
create index incidents_created on incidents (created_at desc);

create table incident_services (
    incident_id uuid not null references incidents on delete cascade,
    service_id uuid not null references services on delete cascade,
    primary key (incident_id, service_id)
);
create index incident_services_service on incident_services (service_id);

-- Probes whose state changes brought them into the incident (their recovery ends it).
create table incident_probes (
    incident_id uuid not null references incidents on delete cascade,
    probe_id uuid not null references probes on delete cascade,
    primary key (incident_id, probe_id)
);

create table incident_participants (
    incident_id uuid not null references incidents on delete cascade,
    user_id uuid not null references users on delete cascade,
    joined_at timestamptz not null default now(),
    primary key (incident_id, user_id)
);

create table timeline_entries (
    entry_id uuid primary key,
    incident_id uuid not null references incidents on delete cascade,
    kind text not null check (kind in
        ('observation', 'hypothesis', 'action', 'decision', 'status_change', 'note', 'automatic')),
    text text not null check (length(text) <= 20000),
    author text not null,
    author_id uuid references users (user_id) on delete set null,
    happened_at timestamptz not null,
    -- The clock, not the transaction's start: entries written in one transaction keep their order.
    recorded_at timestamptz not null default clock_timestamp(),
    attachments jsonb not null default '[]',
    revision integer not null default 1,
    edited_at timestamptz,
    deleted_at timestamptz,
    deleted_by text,
    -- A client's retry of the same post carries the same key: stored once.
    idempotency_key text,
    -- The state change an automatic entry reports: one entry per change, however often it is seen.
    state_change_id bigint unique references state_changes on delete set null,
    unique (incident_id, idempotency_key)
);
create index timeline_entries_incident on timeline_entries (incident_id, happened_at, recorded_at);

-- Earlier versions of edited entries.
create table timeline_revisions (
    entry_id uuid not null references timeline_entries on delete cascade,
    revision integer not null,
    kind text not null,
    text text not null,
    happened_at timestamptz not null,
    attachments jsonb not null,
    replaced_by text not null,
    replaced_at timestamptz not null default now(),
    primary key (entry_id, revision)
);

-- State changes the incident engine has handled. Changes older than this table are history: the
-- engine must not open incidents for them.
alter table state_changes add column handled_at timestamptz;
update state_changes set handled_at = now();
create index state_changes_unhandled on state_changes (state_change_id) where handled_at is null;
