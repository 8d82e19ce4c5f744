-- Triage replicas sharing this database. A row is a replica that started at some point; it is
-- alive while its heartbeat is recent and it holds the session advisory lock keyed by its
-- member number (a killed process loses the lock the moment its connection closes).
create table replicas (
    replica_id uuid primary key,
    member_no integer generated always as identity unique,
    host text not null,
    pid integer not null,
    version text not null,
    listen text not null,
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now(),
    -- Reported with each heartbeat, for the admin's list and the tests.
    probes_owned integer not null default 0,
    leader boolean not null default false
);

-- Every replica keeps every probe's definition and runs the ones it owns; a change made through
-- any replica (or straight in SQL) reaches the others on commit.
create function triage_probes_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('triage_probes', coalesce(new.probe_id, old.probe_id)::text);
    return null;
end;
$$;
create trigger probes_changed after insert or update or delete on probes
    for each row execute function triage_probes_changed();
