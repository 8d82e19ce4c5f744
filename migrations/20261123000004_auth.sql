-- Users, their sessions, API tokens and the audit trail (issue 5).

create table users (
    user_id uuid primary key,
    email text not null,
    display_name text not null default '',
    role text not null check (role in ('viewer', 'responder', 'commander', 'admin')),
    -- argon2id PHC string; never leaves the server.
    password_hash text not null,
    disabled_at timestamptz,
    created_at timestamptz not null default now(),
    password_changed_at timestamptz not null default now()
);
-- Emails compare case-insensitively: one account per address however it is typed.
create unique index users_email_key on users (lower(email));

create table sessions (
    -- SHA-256 of the cookie value: a database dump does not hand out live sessions.
    session_hash bytea primary key,
    user_id uuid not null references users on delete cascade,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at timestamptz not null,
    remote_addr text,
    user_agent text
);
create index sessions_user on sessions (user_id);

create table api_tokens (
    token_id uuid primary key,
    name text not null,
    scope text not null check (scope in ('push', 'read', 'admin')),
    token_hash bytea not null unique,
    -- The first characters, so a person can tell tokens apart without the secret.
    prefix text not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);

create table audit_log (
    audit_id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- 'user:<email>', 'token:<name>', 'agent:<probe>', 'cli', 'setup'
    actor text not null,
    action text not null,
    target text not null default '',
    detail jsonb not null default '{}',
    remote_addr text,
    request_id text
);
create index audit_log_at on audit_log (at desc);
-- Tokens are found by their visible prefix, then compared by hash in constant time.
create index api_tokens_prefix on api_tokens (prefix);
