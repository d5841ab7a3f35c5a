#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# status_scale.sh: times what the dashboard and `wgfleetctl status` ask for, on a
# private PostgreSQL holding SERVERS servers (a /24 pool each), ROUTERS live routers
# (70 % connected, 10 % each failed, disconnected and vps_ready) and AUDIT audit
# entries, three runs each, with the load average: the SQL functions in psql, then
# each request the dashboard makes through a coordinator on 127.0.0.1 (curl), then the
# dashboard's first render in headless chromium (tests/bench/dashboard_render.py; left
# out when chromium, chromium-driver or python3-selenium is missing; PYTHON, default
# /usr/bin/python3, is the python that has selenium).
# Usage: tests/bench/status_scale.sh [BUILD_DIR] (default build/dev).
# Environment: SERVERS (1000), ROUTERS (100000), AUDIT (300000). Everything lives in a
# temporary directory removed on exit; the database speaks over its unix socket only.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/dev}
servers=${SERVERS:-1000}
routers=${ROUTERS:-100000}
audit=${AUDIT:-300000}
dir=$(mktemp -d /tmp/wgf-status-scale.XXXXXX)
chmod 755 "$dir"
coord_pid=
cleanup() {
	if [ -n "$coord_pid" ]; then
		kill -TERM "$coord_pid" 2>/dev/null || true
		wait "$coord_pid" 2>/dev/null || true
	fi
	"$top/deploy/pg.sh" wipe "$dir/pg" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
ci=$(WGF_PG_FAST=1 "$top/deploy/pg.sh" start "$dir/pg" | tail -1)
"$build/coordinator/wgfleet-coordinator" --database "$ci" migrate >/dev/null
psql "$ci" -X -q -v ON_ERROR_STOP=1 -v servers="$servers" -v routers="$routers" -v audit="$audit" <<'SQL'
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
-- The audit log of a fleet that has been running: a reservation and a key per router,
-- then moves, over the last week (the newest within the hour).
INSERT INTO audit_log (at, tenant_id, actor, action, router_id, server_id, vpn_ip)
SELECT now() - (g::float8 / :audit) * interval '7 days', r.tenant_id, 'api',
	(ARRAY['router.reserved', 'router.key_set', 'router.connected',
		'router.disconnected'])[g % 4 + 1], r.id, r.server_id, r.vpn_ip
FROM generate_series(1, :audit) g
JOIN (SELECT row_number() OVER () AS n, * FROM routers) r ON r.n = g % :routers + 1;
SELECT wgf_create_admin_key('admin-key-1', decode(repeat('ab', 32), 'hex'), 'bench');
ANALYZE;
SQL
echo "machine $(date -u '+%F %T UTC'); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data    $servers servers, $routers routers, $audit audit entries"
for q in \
	"status|SELECT length(wgf_api_status('admin-key-1', decode(repeat('ab', 32), 'hex'), '90 seconds', NULL, NULL)::text)" \
	"failed page|SELECT length(wgf_api_list_routers('admin-key-1', decode(repeat('ab', 32), 'hex'), 'failed', NULL, NULL, NULL, NULL, NULL, 50, NULL)::text)" \
	"audit 1 h|SELECT length(wgf_api_audit('admin-key-1', decode(repeat('ab', 32), 'hex'), NULL, NULL, NULL, NULL, now() - interval '1 hour', NULL, NULL, NULL, false, NULL, 1000)::text)"; do
	name=${q%%|*}
	times=$(for i in 1 2 3; do psql "$ci" -X -q -At -c '\timing on' -c "${q#*|}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; done | paste -sd/)
	echo "$name: $times ms (load $(cut -d' ' -f1 /proc/loadavg))"
done

# The dashboard's requests through a coordinator, as the page makes them.
head -c 32 /dev/urandom | base64 >"$dir/api-key.secret"
chmod 0600 "$dir/api-key.secret"
cat >"$dir/coordinator.conf" <<CONF
[database]
conninfo = $ci
[http]
listen = 127.0.0.1:0
[channel]
listen = tcp://127.0.0.1:0
signing_key_file = $dir/coordinator.key
[api]
key_hash_secret_file = $dir/api-key.secret
[webhooks]
deliver = false
[metrics]
listen =
CONF
coord=("$build/coordinator/wgfleet-coordinator" --config "$dir/coordinator.conf")
"${coord[@]}" channel-key >/dev/null 2>&1
(umask 077 && "${coord[@]}" create-admin-key 2>/dev/null >"$dir/admin.key")
"${coord[@]}" serve >"$dir/coordinator.log" 2>&1 &
coord_pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*msg=Listening .*port=\([0-9][0-9]*\).*/\1/p' "$dir/coordinator.log" | head -n 1)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "status_scale.sh: the coordinator did not listen" >&2; exit 1; }
base=http://127.0.0.1:$port
failed_cursor=$(curl -sf -H "Authorization: Bearer $(cat "$dir/admin.key")" \
	"$base/v1/routers?status=failed&limit=25" | python3 -c 'import json, sys; print(json.load(sys.stdin)["next_cursor"])')
mid=$(psql "$ci" -X -At -c "SELECT max(id) - 1000 FROM audit_log")
some=$(psql "$ci" -X -At -c "SELECT id || ' ' || host(vpn_ip) FROM routers WHERE name = 'r5000'")
for path in \
	"/v1/status" \
	"/v1/status?limit=50" \
	"/v1/status?limit=50&cursor=vps500" \
	"/v1/routers?status=failed&limit=25" \
	"/v1/routers?status=failed&limit=25&cursor=$failed_cursor" \
	"/v1/routers?status=disconnected&limit=25" \
	"/v1/audit?order=newest&limit=50" \
	"/v1/audit?order=newest&limit=50&before=$mid" \
	"/v1/routers?limit=10&address=${some#* }" \
	"/v1/routers/${some%% *}" \
	"/v1/audit?order=newest&limit=50&router=${some%% *}"; do
	times=$(for i in 1 2 3; do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $(cat "$dir/admin.key")" "$base$path"
	done | awk '$1 != 200 { bad = 1 } { printf "%s%.1f", (NR > 1 ? "/" : ""), $2 * 1000 } END { if (bad) printf " (not all 200)" }')
	echo "GET $(printf '%s' "$path" | sed 's/cursor=[^&]*/cursor=(next)/'): $times ms (load $(cut -d' ' -f1 /proc/loadavg))"
done
py=${PYTHON:-/usr/bin/python3}
if command -v chromium >/dev/null && command -v chromedriver >/dev/null &&
	"$py" -c 'import selenium' 2>/dev/null; then
	echo "chromium, load $(cut -d' ' -f1 /proc/loadavg):"
	timeout 300 "$py" "$top/tests/bench/dashboard_render.py" "$base" "$dir/admin.key" 3
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
else
	echo "chromium: not measured (chromium, chromium-driver or python3-selenium missing)"
fi
