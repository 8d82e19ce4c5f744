-- Service level objectives: one per service, its definition kept as JSON (pinned by tests).
create table slos (
    service_id uuid primary key references services (service_id) on delete cascade,
    spec jsonb not null,
    updated_by text not null,
    updated_at timestamptz not null default now()
);

-- Burn-rate alerts. One firing alert per (service, objective, speed): a burn that goes on is
-- one alert, not one a minute.
create table slo_alerts (
    alert_id bigint generated always as identity primary key,
    service_id uuid not null references services (service_id) on delete cascade,
    objective text not null check (objective in ('availability', 'latency')),
    speed text not null check (speed in ('fast', 'slow')),
    long_burn double precision not null,
    short_burn double precision not null,
    fired_at timestamptz not null,
    cleared_at timestamptz,
    incident_id uuid references incidents (incident_id) on delete set null
);
create unique index slo_alerts_firing on slo_alerts (service_id, objective, speed) where cleared_at is null;
create index slo_alerts_service on slo_alerts (service_id, fired_at desc);
