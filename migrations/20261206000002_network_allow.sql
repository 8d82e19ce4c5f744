-- The probe network allowlist as admins edit it in the browser (audited), in addition to the
-- `--probe-allow` entries of the command line.
create table network_allow (
    cidr text primary key,
    note text not null default '',
    created_by text not null,
    created_at timestamptz not null default now()
);
