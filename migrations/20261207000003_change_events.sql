-- Change events: deploys, configuration changes, feature flags, migrations and infrastructure
-- work, posted by CI scripts (`triage change add`, `POST /api/v1/changes`) or from the service
-- page. Charts mark them, incident rooms list the ones that touch an affected service, and the
-- checklists' "did anything change?" steps answer from them.
create table change_events (
    change_id uuid primary key,
    service_id uuid not null references services (service_id) on delete cascade,
    kind text not null check (kind in ('deploy', 'config', 'feature_flag', 'migration', 'infra')),
    title text not null check (length(title) between 1 and 200),
    version text check (length(version) between 1 and 100),
    link text check (length(link) between 1 and 2000),
    author text check (length(author) between 1 and 200),
    at timestamptz not null,
    ends_at timestamptz check (ends_at >= at),
    recorded_by text not null,
    recorded_at timestamptz not null default now()
);

create index change_events_service_at on change_events (service_id, at);
