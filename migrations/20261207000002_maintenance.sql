-- Maintenance windows: planned work on services or tags. During one nothing opens an incident and
-- nothing is notified; probes keep running. `starts_at`/`ends_at` are the first occurrence;
-- `recurrence` repeats it weekly or monthly in a time zone.
create table maintenance_windows (
    window_id uuid primary key,
    title text not null check (length(title) between 1 and 200),
    services uuid[] not null default '{}',
    tags text[] not null default '{}',
    starts_at timestamptz not null,
    ends_at timestamptz not null check (ends_at > starts_at),
    recurrence jsonb,
    -- Ended early: the occurrence under way at this time ends here.
    ended_at timestamptz,
    -- Windows written by the probe file are replaced by it; others are left alone.
    file_managed boolean not null default false,
    created_by text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Outages a window kept quiet: when the window ends and the probe is still down, the incident
-- opens then (with the outage's real start).
create table quieted_outages (
    probe_id uuid primary key references probes (probe_id) on delete cascade,
    since timestamptz not null,
    window_title text not null
);
