-- Guided debugging (issue 7): versioned checklists, the version each incident uses, ticked steps
-- and hypotheses.

create table checklists (
    checklist_id text not null check (checklist_id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    version integer not null,
    definition jsonb not null,
    -- 'file' for versions seeded from checklists/*.toml, else who saved it.
    created_by text not null,
    created_at timestamptz not null default now(),
    primary key (checklist_id, version)
);

-- The version an incident was first shown keeps being used for it, whatever is edited later.
create table incident_checklists (
    incident_id uuid not null references incidents on delete cascade,
    checklist_id text not null,
    version integer not null,
    first_proposed_at timestamptz not null default now(),
    primary key (incident_id, checklist_id),
    foreign key (checklist_id, version) references checklists
);

create table checklist_ticks (
    incident_id uuid not null references incidents on delete cascade,
    checklist_id text not null,
    step_id text not null,
    done boolean not null,
    finding text not null default '',
    ticked_by text not null,
    ticked_at timestamptz not null default now(),
    primary key (incident_id, checklist_id, step_id)
);

create table hypotheses (
    hypothesis_id uuid primary key,
    incident_id uuid not null references incidents on delete cascade,
    text text not null check (length(text) between 1 and 2000),
    status text not null check (status in ('open', 'confirmed', 'ruled_out')),
    evidence text not null default '',
    created_by text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index hypotheses_incident on hypotheses (incident_id, created_at);
