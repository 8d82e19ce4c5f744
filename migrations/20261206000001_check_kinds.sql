-- Probes of other protocols than HTTP (issue 19): TCP, TLS, DNS, ICMP and gRPC health.
alter table probes drop constraint probes_kind_check;
alter table probes add constraint probes_kind_check
    check (kind in ('http', 'readiness', 'metrics', 'push', 'tcp', 'tls', 'dns', 'icmp', 'grpc'));
