-- Postmortems (issue 8): one per incident, reviewed draft → in review → published. A published
-- one is read-only; amending it keeps the published text as a revision and starts the next one.

create table postmortems (
    postmortem_id uuid primary key,
    incident_id uuid not null unique references incidents on delete cascade,
    status text not null check (status in ('draft', 'in_review', 'published')),
    -- The revision being written (or last published); earlier ones are in postmortem_revisions.
    revision integer not null default 1,
    -- Markdown sections and action items, as `PostmortemDoc`.
    doc jsonb not null,
    -- Computed metrics with any overrides, and the impact figures, as computed at creation.
    metrics jsonb not null,
    impact jsonb not null,
    -- The incident window the charts were frozen over (with padding).
    window_from timestamptz not null,
    window_to timestamptz not null,
    -- The timeline as published (null until then: drafts show the incident's live timeline).
    timeline jsonb,
    created_by text not null,
    created_at timestamptz not null default now(),
    updated_by text not null,
    updated_at timestamptz not null default now(),
    published_by text,
    published_at timestamptz
);

-- SVG drawn by the dashboard's chart functions when the postmortem was created: the charts
-- survive the raw results' retention.
create table postmortem_charts (
    postmortem_id uuid not null references postmortems on delete cascade,
    position integer not null,
    service_id uuid not null,
    service_name text not null,
    kind text not null check (kind in ('latency', 'errors', 'pool')),
    svg text not null,
    primary key (postmortem_id, position)
);

create table postmortem_comments (
    comment_id uuid primary key,
    postmortem_id uuid not null references postmortems on delete cascade,
    revision integer not null,
    section text not null,
    text text not null check (length(text) between 1 and 10000),
    author text not null,
    created_at timestamptz not null default now()
);
create index postmortem_comments_by_postmortem on postmortem_comments (postmortem_id, created_at);

-- Every published revision, kept whole when it is amended.
create table postmortem_revisions (
    postmortem_id uuid not null references postmortems on delete cascade,
    revision integer not null,
    doc jsonb not null,
    metrics jsonb not null,
    timeline jsonb,
    published_by text,
    published_at timestamptz,
    amended_by text not null,
    amended_at timestamptz not null default now(),
    reason text not null,
    primary key (postmortem_id, revision)
);
