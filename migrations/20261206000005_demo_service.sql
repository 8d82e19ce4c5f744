-- The built-in demo's service, remembered by id: a user's own service that happens to be named
-- like the demo is never taken over or removed with it.
alter table instance add column demo_service_id uuid references services (service_id) on delete set null;
