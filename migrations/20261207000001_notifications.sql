-- Notifications: channels, routing rules, and a durable outbox. An event is written in the same
-- transaction as the change it announces; the router turns it into one delivery per channel
-- (unique per event and channel) and the worker sends each until one attempt succeeds.

create table notification_channels (
    channel_id uuid primary key,
    name text not null check (length(name) between 1 and 100),
    kind text not null,
    enabled boolean not null default true,
    -- The whole definition, secrets included; the API masks them on the way out.
    spec jsonb not null,
    -- Set by the first failed attempt after a success, cleared by the next success.
    failing_since timestamptz,
    failing_announced boolean not null default false,
    last_delivered_at timestamptz,
    last_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index notification_channels_name on notification_channels (lower(name));

create table notification_rules (
    rule_id uuid primary key,
    name text not null check (length(name) between 1 and 100),
    spec jsonb not null,
    -- Rules written by the probe file are replaced by it; others are left alone.
    file_managed boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table notification_events (
    event_id uuid primary key,
    kind text not null,
    at timestamptz not null,
    -- The event's body without its links (they follow --public-url when sent).
    payload jsonb not null,
    service_id uuid,
    probe_id uuid,
    incident_id uuid,
    severity text,
    -- A periodic check's event is raised once per subject (a certificate, an overdue item).
    dedup_key text unique,
    -- Only to this channel ("Send test"): rules are not consulted.
    channel_id uuid references notification_channels (channel_id) on delete cascade,
    routed_at timestamptz,
    created_at timestamptz not null default now()
);
create index notification_events_unrouted on notification_events (created_at) where routed_at is null;
create index notification_events_created on notification_events (created_at);

create table notification_deliveries (
    delivery_id uuid primary key,
    event_id uuid not null references notification_events (event_id) on delete cascade,
    channel_id uuid not null references notification_channels (channel_id) on delete cascade,
    state text not null check (state in ('pending', 'delivered', 'failed', 'suppressed')),
    attempts integer not null default 0,
    next_at timestamptz not null,
    -- While an attempt is under way: nobody else may start one before this time. A sender that
    -- dies mid-attempt leaves it to expire, and the delivery is tried again (same event id).
    lease_until timestamptz,
    last_attempt_at timestamptz,
    last_answer text,
    delivered_at timestamptz,
    -- Flap control: the probe this delivery speaks for, and how many changes it stands for.
    probe_id uuid,
    covers integer not null default 1,
    covers_since timestamptz,
    held boolean not null default false,
    created_at timestamptz not null default now(),
    unique (event_id, channel_id)
);
create index notification_deliveries_due on notification_deliveries (next_at) where state = 'pending';
create index notification_deliveries_channel on notification_deliveries (channel_id, created_at desc);
create index notification_deliveries_probe on notification_deliveries (probe_id, channel_id, created_at desc)
    where probe_id is not null;

-- A new instance tells every channel about incidents (and about a channel that keeps failing).
insert into notification_rules (rule_id, name, spec) values (
    '00000000-0000-4000-8000-00000000a001',
    'Incidents to every channel',
    '{"name": "Incidents to every channel", "enabled": true,
      "events": ["incident.opened", "incident.updated", "incident.resolved", "channel.failing"],
      "services": [], "tags": [], "min_severity": null, "channels": [], "all_channels": true}'
);
