#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# status_scale.sh: times what the dashboard and `wgfleetctl status` ask for, on a
# private PostgreSQL holding SERVERS servers (a /24 pool each) and ROUTERS live routers
# (70 % connected, 10 % each failed, disconnected and vps_ready), three runs each, with
# the load average. Usage: tests/bench/status_scale.sh [BUILD_DIR] (default build/dev).
# Environment: SERVERS (1000), ROUTERS (100000). Everything lives in a temporary
# directory removed on exit; the database speaks over its unix socket only.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/dev}
servers=${SERVERS:-1000}
routers=${ROUTERS:-100000}
dir=$(mktemp -d /tmp/wgf-status-scale.XXXXXX)
chmod 755 "$dir"
trap '"$top/deploy/pg.sh" wipe "$dir/pg" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
ci=$(WGF_PG_FAST=1 "$top/deploy/pg.sh" start "$dir/pg" | tail -1)
"$build/coordinator/wgfleet-coordinator" --database "$ci" migrate >/dev/null
psql "$ci" -X -q -v ON_ERROR_STOP=1 -v servers="$servers" -v routers="$routers" <<'SQL'
INSERT INTO tenants (slug, name, router_quota, reservations_per_hour)
SELECT 't' || g, 'T' || g, 1000000, 0 FROM generate_series(1, 100) g;
INSERT INTO servers (name, endpoint, pool, gateway, agent_key, last_seen_at)
SELECT 'vps' || g, 'vps' || g || '.example.net:51820',
	('10.' || (g / 256) || '.' || (g % 256) || '.0/24')::cidr,
	('10.' || (g / 256) || '.' || (g % 256) || '.1')::inet,
	decode(md5(g::text) || md5('x' || g), 'hex'), now()
FROM generate_series(1, :servers) g;
INSERT INTO pool_addresses (server_id, ip)
SELECT s.id, host(s.pool)::inet + n FROM servers s, generate_series(2, 254) n;
INSERT INTO server_usage (server_id, shard) SELECT s.id, g FROM servers s, generate_series(0, 15) g;
CREATE TEMP TABLE plan AS SELECT gen_random_uuid() AS id, p.server_id, p.ip,
	row_number() OVER () AS n FROM pool_addresses p ORDER BY p.server_id, p.ip LIMIT :routers;
INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, public_key, status,
	reservation_expires_at, configured_at, key_revision, persistent_keepalive)
SELECT p.id, (SELECT id FROM tenants WHERE slug = 't' || (p.n % 100 + 1)), p.server_id,
	'r' || p.n, p.ip, decode(md5(p.id::text) || md5(p.n::text), 'hex'),
	(CASE p.n % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'disconnected' WHEN 2 THEN 'vps_ready'
		ELSE 'connected' END)::router_status, now() + interval '1 day', now(), 0, 25
FROM plan p;
UPDATE pool_addresses a SET router_id = p.id FROM plan p WHERE a.server_id = p.server_id AND a.ip = p.ip;
SELECT wgf_create_admin_key('admin-key-1', decode(repeat('ab', 32), 'hex'), 'bench');
ANALYZE;
SQL
echo "machine $(date -u '+%F %T UTC'); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data    $servers servers, $routers routers"
for q in \
	"status|SELECT length(wgf_api_status('admin-key-1', decode(repeat('ab', 32), 'hex'), '90 seconds', NULL, NULL)::text)" \
	"failed page|SELECT length(wgf_api_list_routers('admin-key-1', decode(repeat('ab', 32), 'hex'), 'failed', NULL, NULL, NULL, NULL, 50, NULL)::text)" \
	"audit 1 h|SELECT length(wgf_api_audit('admin-key-1', decode(repeat('ab', 32), 'hex'), NULL, NULL, NULL, NULL, now() - interval '1 hour', NULL, NULL, NULL, false, 1000)::text)"; do
	name=${q%%|*}
	times=$(for i in 1 2 3; do psql "$ci" -X -q -At -c '\timing on' -c "${q#*|}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; done | paste -sd/)
	echo "$name: $times ms (load $(cut -d' ' -f1 /proc/loadavg))"
done
