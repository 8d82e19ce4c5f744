-- The identity of this Triage installation: one row, created on first start.
create table instance (
    instance_id uuid primary key,
    singleton boolean not null default true unique check (singleton),
    created_at timestamptz not null default now()
);
