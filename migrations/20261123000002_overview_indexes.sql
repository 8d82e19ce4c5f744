-- The overview lists every service with its worst probe state: without this index each of
-- 2,000 services scanned all probes twice (300 ms); with it, the list takes a few ms.
create index probes_by_service on probes (service_id, name);
