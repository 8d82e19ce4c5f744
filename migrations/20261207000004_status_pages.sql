-- Public status pages: chosen services in groups, readable without signing in. Only what is
-- chosen here, and the public updates below, ever reaches them.
create table status_pages (
    page_id uuid primary key,
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title text not null check (length(title) between 1 and 200),
    description text not null default '' check (length(description) <= 2000),
    -- [{"name": "...", "services": ["<uuid>", ...]}, ...]
    groups jsonb not null default '[]',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- What a commander tells the outside about an incident, separate from the internal timeline.
create table public_updates (
    update_id uuid primary key,
    incident_id uuid not null references incidents (incident_id) on delete cascade,
    status text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved')),
    text text not null check (length(text) between 1 and 5000),
    author text not null,
    created_at timestamptz not null default now()
);

create index public_updates_incident on public_updates (incident_id, created_at);
