#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# reserve.sh: the reservation benchmark (issue 6, item 1). Measures, side by side in
# one run on one database, three sides with the same number of clients and the same
# duration:
#   HTTP     POST /v1/routers through the coordinator (wrk with keep-alive connections
#            and tests/bench/reserve.lua);
#   pgbench  the SQL function the coordinator calls for it (wgf_api_reserve, -M
#            prepared);
#   lean     pgbench on a reference function this script creates in its own database,
#            wgf_bench_lean_reserve (not a migration): only the essential work of a
#            reservation, i.e. take the free address FOR UPDATE SKIP LOCKED through the
#            same partial index, insert the router, insert the audit row.
# It reports HTTP/pgbench and pgbench/lean per row. The targets: HTTP >= 0.5x pgbench
# (issue 3) and wgf_api_reserve >= 0.8x the lean reference (the API issue, item 7).
#
#   tests/bench/reserve.sh [--quick] [--duration S] [--rounds R] [--db-connections N]
#                          [--tenants N] [--capacity N] [--rows LIST]
#                          [--routers-per-tenant N] [--profile] [--no-http]
#                          [--webhooks N] [--hooks-undelivered]
#
#   --quick             one 2 s round, two configurations, no timing verdict: a smoke
#                       test (CI runs it through tests/integration/test_bench_quick.py)
#   --duration S        seconds of each measurement (default 5)
#   --rounds R          measurements per side and row, alternating which side goes
#                       first (default 3): the machine's load drifts, the ratio of
#                       neighbouring runs drifts less
#   --db-connections N  the coordinator's [database] connections (default: its own
#                       default)
#   --tenants N         tenants, one key each, rotated by both sides (default 128, the
#                       most script files pgbench takes; --quick: 16)
#   --capacity N        free addresses per pool size, over as many servers as that
#                       takes (default 65536: one /16, 16 /20s, 259 /24s)
#   --rows LIST         the rows to measure, CLIENTS:POOL[,...] with POOL 16, 20 or 24
#                       (default 1:16,8:16,32:16,128:16,32:24,32:20,32:16)
#   --routers-per-tenant N
#                       live routers every tenant already holds before each
#                       measurement (default 0). They sit on /16 servers of their own
#                       (named 900001...) that no row reserves on, are made by plain
#                       INSERTs (created now, so both the quota and the hourly-rate
#                       count see them) and are kept across the resets.
#   --profile           also load pg_stat_statements (track = all) and track_functions
#                       = all in the private cluster, and write, per measurement, the
#                       statements and functions the database ran, WAL statistics, and
#                       EXPLAIN (ANALYZE, BUFFERS) of the reservation's statements to
#                       build/bench/results/reserve-<time>-profile.txt. The
#                       instrumentation costs time: compare ratios only within a run.
#   --no-http           leave the HTTP side out (pgbench and lean only), e.g. for a schema
#                       the coordinator built beside it cannot serve yet
#   --webhooks N        a fourth side, "hooks": the HTTP side again with N admin webhooks
#                       (every event type) pointing at deploy/webhook-receiver.py on
#                       127.0.0.1, which checks each signature; the coordinator delivers
#                       ([webhooks] deliver, 127.0.0.1/32 allowed). The other sides run
#                       with no webhook at all (the webhooks are made before the hooks
#                       side's measurement and deleted, with their events, before the
#                       others'). Reports hooks/HTTP per row and the deliveries made.
#   --hooks-undelivered with --webhooks: the coordinator delivers nothing ([webhooks]
#                       deliver = false), so the hooks side pays for the outbox rows
#                       alone, not for sending them
#
# Environment: WGF_PG_FAST=1 turns PostgreSQL's durability off for both sides (the
# default is a durable cluster: fsync and synchronous_commit on). WGF_BENCH_BUILD=DIR
# uses the coordinator already built in DIR instead of building build/bench.
# WGF_BENCH_SQL=FILE runs FILE in the database after the migrations, before anything
# else: for trying a change to the SQL (CREATE OR REPLACE FUNCTION ...) side by side
# with the lean reference; the table's heading names the file.
#
# It builds build/bench (meson, --buildtype=release) when needed, starts a private
# PostgreSQL (deploy/pg.sh) and a coordinator on 127.0.0.1 (port 0) in a temporary
# directory, creates tenants whose quota and reservation rate are far above what a run
# uses, their keys, and servers with /16, /20 and /24 pools. Rows: 1, 8, 32 and 128
# clients on /16 pools, then /24, /20 and /16 pools at 32 clients. Requests name their
# server, rotating over the row's servers, so no reservation depends on how many
# servers exist. Before every measurement the pools are refilled, the routers and
# audit rows of earlier runs are removed (the pre-filled routers stay), and the tables
# are vacuumed and checkpointed, so each starts from the same state. The sides run in
# the order HTTP, pgbench, lean in odd rounds and lean, pgbench, HTTP in even ones.
# Traffic goes only to 127.0.0.1 and the database's unix socket. Everything it started
# is stopped and removed on exit.
#
# Prints a table (req/s, p50, p99, errors for each side, the two ratios per row, the
# buffers one address allocation touches, and the 1-minute load average before each
# measurement) and writes every measurement to build/bench/results/reserve-<time>.csv.
# Exit status: 0 when every run succeeded (and, in a full run, both targets are met in
# the headline row: the first at 32 clients on /16, else the first row); 2 when the
# runs succeeded but a target was missed; 1 when something failed outright (a non-201
# answer, a socket error, a pgbench error or abort, a setup step).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench_dir=$top/tests/bench
quick=0
duration=
rounds=
db_connections=
tenants=
capacity=
rows_opt=
per_tenant=0
profile=0
no_http=0
webhooks=0
hooks_deliver=true

usage() {
	sed -n '/^#   tests\/bench\/reserve.sh \[/,/^# uses the coordinator already built/p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--duration) duration=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--db-connections) db_connections=$2; shift ;;
	--tenants) tenants=$2; shift ;;
	--capacity) capacity=$2; shift ;;
	--rows) rows_opt=$2; shift ;;
	--routers-per-tenant) per_tenant=$2; shift ;;
	--profile) profile=1 ;;
	--no-http) no_http=1 ;;
	--webhooks) webhooks=$2; shift ;;
	--hooks-undelivered) hooks_deliver=false ;;
	-h | --help) usage; exit 0 ;;
	*) echo "reserve.sh: unknown argument '$1'" >&2; usage >&2; exit 1 ;;
	esac
	shift
done

# Rows: clients:pool prefix.
if [ "$quick" -eq 1 ]; then
	duration=${duration:-2}
	rounds=${rounds:-1}
	tenants=${tenants:-16}
	configs=(8:16 8:24)
else
	duration=${duration:-5}
	rounds=${rounds:-3}
	tenants=${tenants:-128}
	configs=(1:16 8:16 32:16 128:16 32:24 32:20 32:16)
fi
capacity=${capacity:-65536}
[ -z "$rows_opt" ] || IFS=, read -r -a configs <<<"$rows_opt"
for cfg in "${configs[@]}"; do
	[[ $cfg =~ ^[1-9][0-9]*:(16|20|24)$ ]] || { echo "reserve.sh: --rows: '$cfg' is not CLIENTS:16|20|24" >&2; exit 1; }
done
[ "$tenants" -ge 1 ] && [ "$tenants" -le 128 ] || { echo "reserve.sh: --tenants 1..128" >&2; exit 1; }
[[ $per_tenant =~ ^[0-9]+$ ]] || { echo "reserve.sh: --routers-per-tenant N" >&2; exit 1; }
[[ $webhooks =~ ^[0-9]+$ ]] && [ "$webhooks" -le 100 ] || { echo "reserve.sh: --webhooks 0..100" >&2; exit 1; }
[ "$webhooks" -eq 0 ] || [ "$no_http" -eq 0 ] || { echo "reserve.sh: --webhooks needs the HTTP side" >&2; exit 1; }
# /16 servers for the pre-filled routers (a /16 is created within the coordinator's 5 s
# statement timeout on a loaded machine, a /14 is not): at most 64 of them.
fill_usable=$(((1 << 16) - 3))
fill_servers=$(((tenants * per_tenant + fill_usable - 1) / fill_usable))
[ "$fill_servers" -le 64 ] || { echo "reserve.sh: --routers-per-tenant: at most $((64 * fill_usable)) routers in all" >&2; exit 1; }
if [ "${WGF_PG_FAST:-0}" = 1 ]; then
	fast=1
	durability="fast (WGF_PG_FAST=1: fsync, synchronous_commit, full_page_writes off)"
else
	fast=0
	durability="durable (pg.sh default: fsync on, synchronous_commit on)"
fi

log() { printf 'reserve.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

for tool in wrk pgbench psql python3; do
	command -v "$tool" >/dev/null || die "$tool is missing (deploy/install-deps.sh installs it)"
done

# ---- build ----
if [ -n "${WGF_BENCH_BUILD:-}" ]; then
	build=$WGF_BENCH_BUILD
else
	build=$top/build/bench
	if [ ! -f "$build/build.ninja" ]; then
		log "configuring $build (release)"
		meson setup "$build" --buildtype=release -Dtests=false >/dev/null ||
			die "meson setup failed"
	fi
	ninja -C "$build" coordinator/wgfleet-coordinator >/dev/null || die "the build failed"
fi
coordinator=$build/coordinator/wgfleet-coordinator
[ -x "$coordinator" ] || die "$coordinator is not built"
results_dir=$top/build/bench/results
mkdir -p "$results_dir"

# ---- everything below lives in $tmp and is undone on exit ----
tmp=$(mktemp -d /tmp/wgf-bench.XXXXXX)
chmod 0755 "$tmp"
coord_pid=
child_pid=
receiver_pid=

cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	if [ -n "$child_pid" ] && kill -0 "$child_pid" 2>/dev/null; then
		kill -TERM "$child_pid" 2>/dev/null || true
		wait "$child_pid" 2>/dev/null || true
	fi
	if [ -n "$receiver_pid" ] && kill -0 "$receiver_pid" 2>/dev/null; then
		kill -TERM "$receiver_pid" 2>/dev/null || true
		wait "$receiver_pid" 2>/dev/null || true
	fi
	if [ -n "$coord_pid" ] && kill -0 "$coord_pid" 2>/dev/null; then
		kill -TERM "$coord_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$coord_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$coord_pid" 2>/dev/null || true
		wait "$coord_pid" 2>/dev/null || true
	fi
	bash "$top/deploy/pg.sh" wipe "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background (so a signal to this script is handled at once)
# with a time bound; returns its exit status.
bounded() {
	local secs=$1 rc=0

	shift
	timeout -k 5 "$secs" "$@" &
	child_pid=$!
	wait "$child_pid" || rc=$?
	child_pid=
	return "$rc"
}

# ---- PostgreSQL and the schema ----
log "starting PostgreSQL in $tmp/pg ($durability)"
conninfo=$(WGF_PG_FAST=$fast bounded 120 bash "$top/deploy/pg.sh" start "$tmp/pg") ||
	die "deploy/pg.sh start failed"
conninfo=$(printf '%s\n' "$conninfo" | tail -n 1)

sql() {
	bounded 300 psql "$conninfo" -X -v ON_ERROR_STOP=1 -Atq "$@"
}

if [ "$profile" -eq 1 ]; then
	log "profiling: pg_stat_statements (track = all), track_functions = all, restarting PostgreSQL"
	sql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
		-c "ALTER SYSTEM SET track_functions = 'all'" \
		-c "ALTER SYSTEM SET track_io_timing = on" \
		-c "ALTER SYSTEM SET track_wal_io_timing = on" >/dev/null
	bounded 120 bash "$top/deploy/pg.sh" stop "$tmp/pg" >/dev/null || die "stopping PostgreSQL failed"
	WGF_PG_FAST=$fast bounded 120 bash "$top/deploy/pg.sh" start "$tmp/pg" >/dev/null ||
		die "restarting PostgreSQL failed"
	# The module's own settings exist once it is loaded.
	sql -c "CREATE EXTENSION pg_stat_statements" \
		-c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	[ "$(sql -c "SHOW pg_stat_statements.track")" = all ] || die "pg_stat_statements.track is not all"
fi

head -c 32 /dev/urandom | base64 >"$tmp/api-key.secret"
chmod 0600 "$tmp/api-key.secret"
{
	echo "[database]"
	echo "conninfo = $conninfo"
	[ -z "$db_connections" ] || echo "connections = $db_connections"
	echo "[http]"
	echo "listen = 127.0.0.1:0"
	echo "[channel]"
	echo "listen = tcp://127.0.0.1:0"
	echo "signing_key_file = $tmp/coordinator.key"
	echo "[api]"
	echo "key_hash_secret_file = $tmp/api-key.secret"
	# The defaults, pinned: pgbench's scripts below pass the same two intervals.
	echo "reservation_ttl = 24h"
	echo "address_cooldown = 1h"
	if [ "$webhooks" -gt 0 ]; then
		echo "[webhooks]"
		echo "deliver = $hooks_deliver"
		echo "allowed_networks = 127.0.0.1/32"
	fi
} >"$tmp/coordinator.conf"
coord() { bounded 60 "$coordinator" --config "$tmp/coordinator.conf" "$@"; }
coord check-config >/dev/null || die "the benchmark's coordinator.conf is refused"
coord migrate >/dev/null 2>"$tmp/migrate.log" || die "migrate failed: $(cat "$tmp/migrate.log")"
coord channel-key >/dev/null 2>&1 || die "channel-key failed"
admin_key=$(coord create-admin-key 2>/dev/null) || die "create-admin-key failed"
if [ -n "${WGF_BENCH_SQL:-}" ]; then
	log "applying WGF_BENCH_SQL=$WGF_BENCH_SQL"
	sql -f "$WGF_BENCH_SQL" >/dev/null || die "WGF_BENCH_SQL=$WGF_BENCH_SQL failed"
fi
db_conns_effective=$(coord dump-config 2>/dev/null | awk -F' = ' '$1 == "connections" && !n++ { print $2 }')

# ---- the coordinator ----
"$coordinator" --config "$tmp/coordinator.conf" serve >"$tmp/coordinator.log" 2>&1 &
coord_pid=$!
port=
for _ in $(seq 150); do
	port=$(sed -n 's/.*msg=Listening .*port=\([0-9][0-9]*\).*/\1/p' "$tmp/coordinator.log" | head -n 1)
	[ -n "$port" ] && break
	kill -0 "$coord_pid" 2>/dev/null || die "the coordinator exited: $(tail -n 5 "$tmp/coordinator.log")"
	sleep 0.1
done
[ -n "$port" ] || die "the coordinator did not listen within 15 s"
log "coordinator (pid $coord_pid) on 127.0.0.1:$port, [database] connections = $db_conns_effective"

# --webhooks: the receiver, and the webhooks' one secret (written by SQL in reset_state).
if [ "$webhooks" -gt 0 ]; then
	hook_secret=whsec_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	(umask 077 && printf '%s\n' "$hook_secret" >"$tmp/webhook.secret")
	hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 "$top/deploy/webhook-receiver.py" "$hook_port" "$tmp/webhook.secret" >"$tmp/webhook.log" 2>&1 &
	receiver_pid=$!
	log "webhook receiver (pid $receiver_pid) on 127.0.0.1:$hook_port; $webhooks admin webhooks on the hooks side"
fi

# ---- tenants, keys, servers ----
declare -A n_servers
pool_args=()
for p in 16 20 24; do
	usable=$(((1 << (32 - p)) - 3))
	n=$(((capacity + usable / 2) / usable))
	[ "$n" -ge 1 ] || n=1
	n_servers[$p]=$n
	pool_args+=(--pool "$p:$n")
done
log "creating $tenants tenants and servers: ${n_servers[16]} x /16, ${n_servers[20]} x /20, ${n_servers[24]} x /24"
WGF_ADMIN_KEY=$admin_key bounded 600 python3 "$bench_dir/reserve_setup.py" --port "$port" \
	--tenants "$tenants" --keys-out "$tmp/keys.txt" "${pool_args[@]}" || die "setup failed"

# Servers of each row's pool size are named PREFIX * 10000 + 1.. and created in that
# order; their ids are contiguous (checked), which the lean side's script relies on.
declare -A id_first id_last
for p in 16 20 24; do
	read -r lo hi n < <(sql -F ' ' -c "SELECT min(id), max(id), count(*) FROM servers
		WHERE name::bigint BETWEEN $((p * 10000 + 1)) AND $((p * 10000 + n_servers[$p]))")
	if [ "$n" -ne "${n_servers[$p]}" ] || [ $((hi - lo + 1)) -ne "$n" ]; then
		die "the /$p servers' ids are not contiguous ($lo..$hi, $n servers)"
	fi
	id_first[$p]=$lo id_last[$p]=$hi
done
read -r tenant_lo tenant_hi < <(sql -F ' ' -c "SELECT min(id), max(id) FROM tenants")
[ $((tenant_hi - tenant_lo + 1)) -eq "$tenants" ] || die "the tenants' ids are not contiguous"
# Everything at or below this server id is reserved on by the rows and reset between
# measurements; above it are the servers of the pre-filled routers.
meas_max=$(sql -c "SELECT max(id) FROM servers")

# The lean reference: the essential work of a reservation and nothing else. Same
# free-list predicate and order as wgf_take_address (so the same partial index), the
# same router row, an audit row like the one wgf_api_reserve writes. The server comes
# as its id and the tenant as its id: no key lookup, no idempotency, no tenant lock,
# no quota or rate count, no usage counter, no JSON reply.
# (Files, not here-documents on bounded: a background job's standard input is /dev/null.)
cat >"$tmp/lean-function.sql" <<-'EOF'
	CREATE FUNCTION wgf_bench_lean_reserve(p_server bigint, p_tenant bigint,
		p_ttl interval, p_cooldown interval)
	RETURNS inet LANGUAGE plpgsql AS $$
	DECLARE
		v_id uuid := gen_random_uuid();
		v_ip inet;
		v_expires timestamptz := now() + p_ttl;
	BEGIN
		SELECT ip INTO v_ip FROM pool_addresses
		WHERE server_id = p_server AND router_id IS NULL AND free_since <= now() - p_cooldown
		ORDER BY free_since, ip LIMIT 1 FOR UPDATE SKIP LOCKED;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'pool_exhausted';
		END IF;
		UPDATE pool_addresses SET router_id = v_id WHERE server_id = p_server AND ip = v_ip;
		INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, reservation_expires_at)
		VALUES (v_id, p_tenant, p_server, NULL, v_ip, v_expires);
		INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip,
			request_id, detail)
		VALUES (p_tenant, 'api', 'router.reserved', v_id, p_server, v_ip, 'pgbench',
			jsonb_build_object('name', NULL, 'expires_at', v_expires));
		RETURN v_ip;
	END
	$$;
EOF
sql -f "$tmp/lean-function.sql" >/dev/null || die "creating wgf_bench_lean_reserve failed"
cat >"$tmp/lean.sql" <<-'EOF'
	\set s random(:first, :last)
	\set t random(:tfirst, :tlast)
	SELECT wgf_bench_lean_reserve(:s, :t, '86400000 milliseconds'::interval, '3600000 milliseconds'::interval);
EOF

# --routers-per-tenant: live routers on servers of their own, made in one
# transaction by plain INSERTs (as many as a tenant would hold, without paying for
# that many reservations), with their addresses taken and the servers' usage counted.
if [ "$per_tenant" -gt 0 ]; then
	log "pre-filling $per_tenant routers per tenant ($((tenants * per_tenant)) routers on $fill_servers x /16)"
	WGF_ADMIN_KEY=$admin_key bounded 900 python3 "$bench_dir/reserve_setup.py" --port "$port" \
		--tenants 0 --keys-out /dev/null --fill "$fill_servers" || die "setup of the servers to pre-fill failed"
	# A schema that numbers each tenant's reservations (routers.tenant_seq, 0004 on
	# h-sql) gets them numbered 1..N here, which is cheaper than having
	# wgf_recount_tenants() number 1.28 million rows afterwards.
	seq_col="" seq_val=""
	if [ "$(sql -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'routers'::regclass
		AND attname = 'tenant_seq' AND NOT attisdropped")" -eq 1 ]; then
		seq_col=", tenant_seq"
		seq_val=", row_number() OVER (PARTITION BY tenant_id ORDER BY server_id, ip)"
	fi
	cat >"$tmp/prefill.sql" <<-EOF
		BEGIN;
		CREATE TEMP TABLE fill ON COMMIT DROP AS
			SELECT pa.server_id, pa.ip, gen_random_uuid() AS id,
				$tenant_lo + (row_number() OVER (ORDER BY pa.server_id, pa.ip) - 1) % $tenants AS tenant_id
			FROM pool_addresses pa WHERE pa.server_id > $meas_max
			ORDER BY pa.server_id, pa.ip LIMIT $((tenants * per_tenant));
		INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, reservation_expires_at$seq_col)
			SELECT id, tenant_id, server_id, 'prefill', ip, now() + interval '24 hours'$seq_val FROM fill;
		UPDATE pool_addresses pa SET router_id = f.id FROM fill f
			WHERE pa.server_id = f.server_id AND pa.ip = f.ip;
		UPDATE server_usage su SET used = f.n
			FROM (SELECT server_id, count(*) AS n FROM fill GROUP BY server_id) f
			WHERE su.server_id = f.server_id AND su.shard = 0;
		COMMIT;
		VACUUM (FREEZE, ANALYZE) routers, pool_addresses, server_usage;
		CHECKPOINT;
	EOF
	bounded 1800 psql "$conninfo" -X -v ON_ERROR_STOP=1 -Atq -f "$tmp/prefill.sql" >/dev/null ||
		die "pre-filling failed"
	# A schema that keeps per-tenant counters (0004 on h-sql) recomputes them from the
	# table here; the resets later delete only the runs' own routers, which leaves such
	# counters a little high, far below the quota.
	bounded 1800 psql "$conninfo" -X -v ON_ERROR_STOP=1 -Atq -c "DO \$\$ BEGIN
		IF to_regprocedure('wgf_recount_tenants()') IS NOT NULL THEN
			PERFORM wgf_recount_tenants();
		END IF; END \$\$" -c "VACUUM (ANALYZE) tenants, routers" >/dev/null || die "recounting the tenants failed"
	got=$(sql -c "SELECT min(n) || ' ' || max(n) FROM (SELECT count(*) AS n FROM routers
		WHERE released_at IS NULL GROUP BY tenant_id) c")
	[ "$got" = "$per_tenant $per_tenant" ] || die "pre-filled routers per tenant: $got, expected $per_tenant"
fi

# pgbench: one script file per tenant (pgbench picks one at random per transaction),
# each the statement the coordinator sends for POST /v1/routers {"server": ...} with
# that tenant's key prefix and hash, the TTL (24 h) and cool-down (1 h) set above in
# milliseconds as the coordinator sends them, a request id and a request hash. The
# server number comes from -D first=/-D last=.
mkdir -p "$tmp/pgbench"
pgbench_files=()
i=0
while IFS='|' read -r prefix hash; do
	i=$((i + 1))
	f=$tmp/pgbench/tenant-$i.sql
	cat >"$f" <<-EOF
		\\set s random(:first, :last)
		SELECT wgf_api_reserve('$prefix', '\\x$hash'::bytea, NULL, :s, '86400000 milliseconds'::interval, '3600000 milliseconds'::interval, 'pgbench', NULL, '\\x$(printf '%064d' 0)'::bytea);
	EOF
	pgbench_files+=(-f "$f")
done < <(sql -c "SELECT prefix, encode(hash, 'hex') FROM api_keys WHERE scope = 'tenant' ORDER BY id")
[ "$i" -eq "$tenants" ] || die "expected $tenants tenant keys in the database, found $i"

# Waits until the coordinator has finished the requests wrk left queued (a request
# whose client has gone still runs), so that nothing writes while the state is reset.
quiesce() {
	local prev=-1 now active

	for _ in $(seq 150); do
		read -r now active < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM routers
			 WHERE server_id <= $meas_max AND released_at IS NULL),
			(SELECT count(*) FROM pg_stat_activity
			 WHERE application_name = 'wgfleet-coordinator' AND state = 'active')")
		[ "$active" -eq 0 ] && [ "$now" -eq "$prev" ] && return 0
		prev=$now
		sleep 0.2
	done
	die "the coordinator did not go idle within 30 s"
}

# Puts every address of the rows' servers back in its pool and drops what earlier runs
# made (not the pre-filled routers), then vacuums and checkpoints: each measurement
# starts from the same state.
reset_state() {
	local side=${1:-} wipe="TRUNCATE routers, changes, audit_log, idempotency_keys;" hooks=""

	quiesce
	[ "$per_tenant" -eq 0 ] || wipe="TRUNCATE changes, audit_log, idempotency_keys;
		DELETE FROM routers WHERE server_id <= $meas_max AND released_at IS NULL;"
	if [ "$webhooks" -gt 0 ]; then
		hooks="TRUNCATE webhooks, webhook_deliveries, webhook_events;"
		[ "$side" != hooks ] || hooks="$hooks INSERT INTO webhooks (url, secret, description)
			SELECT 'http://127.0.0.1:$hook_port/bench/' || i, '$hook_secret', 'reserve.sh'
			FROM generate_series(1, $webhooks) i;"
	fi
	sql -c "BEGIN; $wipe $hooks
		UPDATE pool_addresses SET router_id = NULL, free_since = '-infinity'
		WHERE server_id <= $meas_max AND router_id IS NOT NULL;
		UPDATE server_usage SET used = 0 WHERE server_id <= $meas_max AND used <> 0; COMMIT" \
		-c "VACUUM (ANALYZE) pool_addresses, routers, audit_log, server_usage, tenants$([ "$webhooks" -eq 0 ] || echo ", webhooks, webhook_events, webhook_deliveries")" \
		-c "CHECKPOINT" >/dev/null
}

# Buffers (8 KiB pages) that taking one address from server $1 touches, counted by
# EXPLAIN (ANALYZE, BUFFERS) on the function the reservation uses, inside a transaction
# that is rolled back: the index descent and the updates, plus the index entries of
# addresses taken since the pool was last vacuumed, which the scan must step over.
alloc_pages() {
	quiesce
	sql -c "BEGIN" \
		-c "SELECT wgf_take_address(id, gen_random_uuid(), interval '1 hour') FROM servers WHERE name = '$1'" \
		-c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF)
			SELECT wgf_take_address(id, gen_random_uuid(), interval '1 hour')
			FROM servers WHERE name = '$1'" \
		-c "ROLLBACK" |
		awk '/Buffers:/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(hit|read)=/) {
			split($i, a, "="); n += a[2] } print n; exit }'
}

threads_for() { if [ "$1" -ge 2 ]; then echo 2; else echo 1; fi; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# percentiles FILE: "p50 p99" in microseconds from "value count" lines.
percentiles() {
	sort -n -k1,1 "$1" | awk '{ v[NR] = $1; c[NR] = $2; t += $2 }
		END {
			if (t == 0) { print "0 0"; exit }
			s = 0; a = ""; b = ""
			for (i = 1; i <= NR; i++) {
				s += c[i]
				if (a == "" && s >= t * 0.50) a = v[i]
				if (b == "" && s >= t * 0.99) { b = v[i]; break }
			}
			print a, b
		}'
}

# Every side's totals over a row: ok, microseconds, errors; latency histograms in
# $tmp/<side>.hist.
declare -A t_ok t_us t_err

# http_slice SIDE CLIENTS FIRST LAST: one wrk run (SIDE http or hooks). Sets s_rate
# s_p50 s_p99 s_err and adds to SIDE's totals and histogram.
http_slice() {
	local side=$1 c=$2 first=$3 last=$4 out line rc=0 kv pct
	local -A f=()

	out=$tmp/wrk.out
	rm -f "$tmp/wrk.hist"
	bounded $((duration + 30)) env WGF_WRK_HISTOGRAM="$tmp/wrk.hist" \
		wrk -t "$(threads_for "$c")" -c "$c" -d "${duration}s" --timeout 10s \
		-s "$bench_dir/reserve.lua" "http://127.0.0.1:$port/v1/routers" \
		-- "$tmp/keys.txt" "$first" "$last" >"$out" 2>&1 || rc=$?
	line=$(grep '^WGF_WRK ' "$out" | tail -n 1 || true)
	if [ "$rc" -ne 0 ] || [ -z "$line" ] || [ ! -s "$tmp/wrk.hist" ]; then
		log "  wrk failed (exit $rc): $(tail -n 3 "$out" | tr '\n' ' ')"
		s_rate=0 s_p50=0 s_p99=0 s_err=1
		t_err[$side]=$((t_err[$side] + 1))
		return
	fi
	for kv in ${line#WGF_WRK }; do f[${kv%%=*}]=${kv#*=}; done
	s_err=$((f[non201] + f[socket_errors]))
	[ "$s_err" -eq 0 ] || log "  wrk: ${f[non201]} non-201 answers (${f[statuses]}), ${f[socket_errors]} socket errors; $(grep -m 1 '^reserve.lua' "$out" || true)"
	s_rate=$(awk -v n="${f[ok]}" -v us="${f[duration_us]}" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
	pct=$(percentiles "$tmp/wrk.hist")
	s_p50=$(ms "${pct% *}") s_p99=$(ms "${pct#* }")
	t_ok[$side]=$((t_ok[$side] + f[ok]))
	t_us[$side]=$((t_us[$side] + f[duration_us]))
	t_err[$side]=$((t_err[$side] + s_err))
	cat "$tmp/wrk.hist" >>"$tmp/$side.hist"
}

# pgbench_slice SIDE CLIENTS FIRST LAST: one pgbench run, SIDE pgbench (wgf_api_reserve,
# one script per tenant, FIRST..LAST server names) or lean (wgf_bench_lean_reserve,
# FIRST..LAST server ids). Sets s_rate s_p50 s_p99 s_err and adds to SIDE's totals and
# histogram.
pgbench_slice() {
	local side=$1 c=$2 first=$3 last=$4 out rc=0 processed failed tps pct
	local -a scripts

	if [ "$side" = lean ]; then
		scripts=(-f "$tmp/lean.sql" -D tfirst="$tenant_lo" -D tlast="$tenant_hi")
	else
		scripts=("${pgbench_files[@]}")
	fi
	out=$tmp/pgbench.out
	rm -rf "$tmp/pgblog"
	mkdir -p "$tmp/pgblog"
	bounded $((duration + 60)) pgbench -n -M prepared -c "$c" -j "$(threads_for "$c")" \
		-T "$duration" -D first="$first" -D last="$last" "${scripts[@]}" \
		-l --log-prefix="$tmp/pgblog/tx" "$conninfo" >"$out" 2>&1 || rc=$?
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
	s_err=$((${failed:-0}))
	if [ "$rc" -ne 0 ] || [ -z "$processed" ] || [ -z "$tps" ]; then
		log "  pgbench ($side) failed (exit $rc): $(grep -m 2 -E 'ERROR|abort|FATAL|error' "$out" | tr '\n' ' ')"
		s_err=$((s_err + 1))
	fi
	[ "${failed:-0}" -eq 0 ] || log "  pgbench ($side): $failed failed transactions"
	s_rate=$(awk -v t="${tps:-0}" 'BEGIN { printf "%.0f", t }')
	# Latencies from the per-transaction log (third column, microseconds).
	cat "$tmp/pgblog"/tx* 2>/dev/null | awk '{ print $3, 1 }' >"$tmp/slice.hist"
	pct=$(percentiles "$tmp/slice.hist")
	s_p50=$(ms "${pct% *}") s_p99=$(ms "${pct#* }")
	if [ -n "$processed" ] && [ "$s_rate" != 0 ]; then
		t_ok[$side]=$((t_ok[$side] + processed))
		t_us[$side]=$((t_us[$side] + $(awk -v n="$processed" -v t="$tps" 'BEGIN { printf "%.0f", n / t * 1e6 }')))
	fi
	t_err[$side]=$((t_err[$side] + s_err))
	cat "$tmp/slice.hist" >>"$tmp/$side.hist"
	rm -rf "$tmp/pgblog"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
suffix=
[ "$quick" -eq 0 ] || suffix=-quick
csv=$results_dir/reserve-$stamp$suffix.csv
profile_out=$results_dir/reserve-$stamp$suffix-profile.txt
durability_word=durable
[ "$fast" -eq 0 ] || durability_word=fast
# One line per round, then one "all" line per row, whose first and last load column
# hold the lowest and highest load average seen before the row's measurements.
echo "date,run,round,clients,pool,servers,duration_s,durability,db_connections,routers_per_tenant,http_rps,http_p50_ms,http_p99_ms,http_errors,pgbench_tps,pgbench_p50_ms,pgbench_p99_ms,pgbench_errors,lean_tps,lean_p50_ms,lean_p99_ms,lean_errors,ratio,ratio_lean,alloc_pages_fresh,alloc_pages_end,load1_http,load1_pgbench,load1_lean,webhooks,hooks_rps,hooks_p50_ms,hooks_p99_ms,hooks_errors,ratio_hooks,hooks_delivered,load1_hooks" >"$csv"

rate_of() { awk -v n="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.0f", n / (us / 1e6); else print 0 }'; }
ratio_of() { awk -v h="$1" -v g="$2" 'BEGIN { if (g > 0) printf "%.2f", h / g; else print "0.00" }'; }
load1() { cut -d ' ' -f 1 /proc/loadavg; }
lower() { awk -v a="$1" -v b="$2" 'BEGIN { print (b < a ? b : a) }'; }
higher() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a ? b : a) }'; }

# --profile: what the database did during one measurement.
profile_reset() {
	[ "$profile" -eq 1 ] || return 0
	sql -c "SELECT pg_stat_statements_reset(), pg_stat_reset(), pg_stat_reset_shared('wal')" >/dev/null
}
profile_dump() {
	local title=$1 n=$2

	[ "$profile" -eq 1 ] || return 0
	# Function and WAL statistics reach shared memory when a backend ends or has been
	# idle a while; pgbench's backends have ended, the coordinator's need the wait.
	[ "$title" = "${title#http}" ] || sleep 11
	{
		echo "==== $title: $n transactions ===="
		echo "-- functions (ms; self excludes the functions it calls)"
		sql -F $'\t' -c "SELECT funcname, calls, round(total_time::numeric, 1) AS total_ms,
			round(self_time::numeric, 1) AS self_ms,
			round((total_time / greatest(calls, 1) * 1000)::numeric, 1) AS total_us_per_call,
			round((self_time / greatest(calls, 1) * 1000)::numeric, 1) AS self_us_per_call
			FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 20"
		echo "-- statements, nested ones included (mean and per-transaction cost in us)"
		sql -F $'\t' -c "SELECT calls, round(mean_exec_time::numeric * 1000, 1) AS mean_us,
			round((total_exec_time / greatest($n, 1))::numeric * 1000, 1) AS us_per_tx,
			round((shared_blks_hit + shared_blks_read + shared_blks_dirtied)::numeric
				/ greatest(calls, 1), 1) AS blks_per_call,
			round(wal_bytes / greatest(calls, 1), 0) AS wal_bytes_per_call,
			regexp_replace(left(query, 160), '\s+', ' ', 'g') AS query
			FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25"
		echo "-- WAL"
		sql -F $'\t' -c "SELECT wal_records, wal_bytes, wal_write, wal_sync,
			round(wal_write_time::numeric, 1) AS write_ms, round(wal_sync_time::numeric, 1) AS sync_ms,
			round((wal_sync_time / greatest($n, 1))::numeric * 1000, 1) AS sync_us_per_tx,
			round(wal_bytes / greatest($n, 1), 0) AS bytes_per_tx
			FROM pg_stat_wal"
		echo
	} >>"$profile_out" 2>&1 || log "  profile dump failed"
}
# EXPLAIN (ANALYZE, BUFFERS) of the statements wgf_api_reserve runs, for the first
# tenant and the row's first server, inside a transaction that is rolled back (and the
# first step of placement, for a request that names no server: the benchmark's name one).
profile_explain() {
	local server=$1 key_prefix

	[ "$profile" -eq 1 ] || return 0
	key_prefix=$(sql -c "SELECT prefix FROM api_keys WHERE tenant_id = $tenant_lo LIMIT 1")
	{
		echo "==== EXPLAIN (ANALYZE, BUFFERS): tenant $tenant_lo, server $server ===="
		sql -c "SELECT 'routers of the tenant: live ' || count(*) FILTER (WHERE released_at IS NULL)
			|| ', created in the last hour ' || count(*) FILTER (WHERE created_at > now() - interval '1 hour')
			FROM routers WHERE tenant_id = $tenant_lo"
		local q
		for q in \
			"SELECT id, tenant_id, scope FROM api_keys WHERE prefix = '$key_prefix' AND revoked_at IS NULL" \
			"SELECT * FROM tenants WHERE id = $tenant_lo FOR UPDATE" \
			"SELECT count(*) FROM routers WHERE tenant_id = $tenant_lo AND released_at IS NULL" \
			"SELECT count(*), min(created_at) FROM routers WHERE tenant_id = $tenant_lo AND created_at > now() - interval '1 hour'" \
			"SELECT * FROM servers WHERE name = '$server'" \
			"SELECT sv.* FROM servers sv LEFT JOIN (SELECT server_id, sum(used) AS used FROM server_usage GROUP BY server_id) u ON u.server_id = sv.id ORDER BY coalesce(u.used, 0), sv.id LIMIT 1" \
			"SELECT ip FROM pool_addresses WHERE server_id = (SELECT id FROM servers WHERE name = '$server') AND router_id IS NULL AND free_since <= now() - interval '1 hour' ORDER BY free_since, ip LIMIT 1 FOR UPDATE SKIP LOCKED" \
			"SELECT wgf_api_reserve('$key_prefix', (SELECT hash FROM api_keys WHERE prefix = '$key_prefix'), NULL, '$server', interval '24 hours', interval '1 hour', 'explain', NULL, '\\x00'::bytea)" \
			"SELECT wgf_bench_lean_reserve((SELECT id FROM servers WHERE name = '$server'), $tenant_lo, interval '24 hours', interval '1 hour')"; do
			echo "-- $q"
			sql -c "BEGIN" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $q" -c "ROLLBACK"
		done
		echo
	} >>"$profile_out" 2>&1 || log "  profile explain failed"
}

fmt='%-3s %7s %4s %7s | %7s %7s %7s %6s | %7s %7s %7s %6s | %7s %7s %7s %6s | %5s %9s | %5s %9s | %9s | %s\n'
rows=()
hook_rows=()
failures=0
headline=
headline_lean=
headline_row=
run=0
for cfg in "${configs[@]}"; do
	run=$((run + 1))
	c=${cfg%%:*}
	p=${cfg#*:}
	first=$((p * 10000 + 1))
	last=$((p * 10000 + ${n_servers[$p]}))
	log "run $run/${#configs[@]}: $c clients, ${n_servers[$p]} x /$p pools, $rounds x ${duration} s each side"
	for side in http pgbench lean hooks; do
		t_ok[$side]=0 t_us[$side]=0 t_err[$side]=0
		: >"$tmp/$side.hist"
	done
	kmin="" kmax="" hooks_delivered=0
	reset_state
	profile_explain "$first"
	pages_fresh=$(alloc_pages "$first")
	pages_end=0
	rmin="" rmax="" lmin="" lmax="" loadmin="" loadmax=""
	for r in $(seq "$rounds"); do
		round_pages=0
		declare -A ld=()
		# Alternate the order, so drift in the machine's load evens out: pgbench runs
		# between the other two, next to each of the sides it is compared with.
		hr=0 h50=0 h99=0 he=0 ld[http]=
		kr=0 k50=0 k99=0 ke=0 kd=0 ld[hooks]=
		# --webhooks: the hooks side next to the HTTP side it is compared with.
		for side in $([ $((r % 2)) -eq 1 ] && echo "http hooks pgbench lean" || echo "lean pgbench hooks http"); do
			[ "$side" != http ] || [ "$no_http" -eq 0 ] || continue
			[ "$side" != hooks ] || [ "$webhooks" -gt 0 ] || continue
			reset_state "$side"
			profile_reset
			ld[$side]=$(load1)
			loadmin=$(lower "${loadmin:-${ld[$side]}}" "${ld[$side]}")
			loadmax=$(higher "${loadmax:-${ld[$side]}}" "${ld[$side]}")
			case $side in
			http)
				http_slice http "$c" "$first" "$last"
				hr=$s_rate h50=$s_p50 h99=$s_p99 he=$s_err
				;;
			hooks)
				http_slice hooks "$c" "$first" "$last"
				kr=$s_rate k50=$s_p50 k99=$s_p99 ke=$s_err
				kd=$(sql -c "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
				hooks_delivered=$((hooks_delivered + kd))
				;;
			pgbench)
				pgbench_slice pgbench "$c" "$first" "$last"
				gr=$s_rate g50=$s_p50 g99=$s_p99 ge=$s_err
				;;
			lean)
				pgbench_slice lean "$c" "${id_first[$p]}" "${id_last[$p]}"
				lr=$s_rate l50=$s_p50 l99=$s_p99 le=$s_err
				;;
			esac
			profile_dump "$side, run $run ($c clients, /$p), round $r, load $(load1)" \
				"$(sql -c "SELECT count(*) FROM routers WHERE server_id <= $meas_max AND released_at IS NULL")"
			pg=$(alloc_pages "$first")
			[ "${pg:-0}" -le "$round_pages" ] || round_pages=$pg
			[ "${pg:-0}" -le "$pages_end" ] || pages_end=$pg
		done
		rr=$(ratio_of "$hr" "$gr")
		[ "$no_http" -eq 0 ] || rr=-
		rl=$(ratio_of "$gr" "$lr")
		rk=-
		if [ "$webhooks" -gt 0 ]; then
			rk=$(ratio_of "$kr" "$hr")
			kmin=$(lower "${kmin:-$rk}" "$rk") kmax=$(higher "${kmax:-$rk}" "$rk")
			log "  round $r: with $webhooks webhooks $kr/s ($kd delivered by the end): hooks/HTTP $rk (load ${ld[hooks]})"
		fi
		rmin=$(lower "${rmin:-$rr}" "$rr") rmax=$(higher "${rmax:-$rr}" "$rr")
		lmin=$(lower "${lmin:-$rl}" "$rl") lmax=$(higher "${lmax:-$rl}" "$rl")
		log "  round $r: HTTP $hr/s, pgbench $gr tps, lean $lr tps: HTTP/pgbench $rr, pgbench/lean $rl (load ${ld[http]} ${ld[pgbench]} ${ld[lean]})"
		echo "$stamp,$run,$r,$c,/$p,${n_servers[$p]},$duration,$durability_word,$db_conns_effective,$per_tenant,$hr,$h50,$h99,$he,$gr,$g50,$g99,$ge,$lr,$l50,$l99,$le,$rr,$rl,$pages_fresh,$round_pages,${ld[http]},${ld[pgbench]},${ld[lean]},$webhooks,$kr,$k50,$k99,$ke,$rk,$kd,${ld[hooks]}" >>"$csv"
	done
	declare -A rate=() p50=() p99=()
	for side in http pgbench lean hooks; do
		rate[$side]=$(rate_of "${t_ok[$side]}" "${t_us[$side]}")
		pct=$(percentiles "$tmp/$side.hist")
		p50[$side]=$(ms "${pct% *}") p99[$side]=$(ms "${pct#* }")
		[ "${t_err[$side]}" -eq 0 ] || failures=$((failures + 1))
		[ "$side" != hooks ] || [ "$webhooks" -gt 0 ] || continue
		if [ "${rate[$side]}" = 0 ] && { [ "$side" != http ] || [ "$no_http" -eq 0 ]; }; then
			log "  $side measured nothing"
			failures=$((failures + 1))
		fi
	done
	ratio=$(ratio_of "${rate[http]}" "${rate[pgbench]}")
	[ "$no_http" -eq 0 ] || ratio=- rmin=- rmax=-
	ratio_lean=$(ratio_of "${rate[pgbench]}" "${rate[lean]}")
	ratio_hooks=-
	if [ "$webhooks" -gt 0 ]; then
		ratio_hooks=$(ratio_of "${rate[hooks]}" "${rate[http]}")
		hook_rows+=("$(printf '%-3s %7s %4s | %7s %7s %7s | %7s %7s %7s %6s | %6s %9s | %9s\n' \
			"$run" "$c" "/$p" "${rate[http]}" "${p50[http]}" "${p99[http]}" \
			"${rate[hooks]}" "${p50[hooks]}" "${p99[hooks]}" "${t_err[hooks]}" \
			"$ratio_hooks" "$kmin-$kmax" "$hooks_delivered")")
	fi
	rows+=("$(printf "$fmt" "$run" "$c" "/$p" "${n_servers[$p]}" \
		"${rate[http]}" "${p50[http]}" "${p99[http]}" "${t_err[http]}" \
		"${rate[pgbench]}" "${p50[pgbench]}" "${p99[pgbench]}" "${t_err[pgbench]}" \
		"${rate[lean]}" "${p50[lean]}" "${p99[lean]}" "${t_err[lean]}" \
		"$ratio" "$rmin-$rmax" "$ratio_lean" "$lmin-$lmax" \
		"$pages_fresh->$pages_end" "$loadmin-$loadmax")")
	echo "$stamp,$run,all,$c,/$p,${n_servers[$p]},$((duration * rounds)),$durability_word,$db_conns_effective,$per_tenant,${rate[http]},${p50[http]},${p99[http]},${t_err[http]},${rate[pgbench]},${p50[pgbench]},${p99[pgbench]},${t_err[pgbench]},${rate[lean]},${p50[lean]},${p99[lean]},${t_err[lean]},$ratio,$ratio_lean,$pages_fresh,$pages_end,$loadmin,,$loadmax,$webhooks,${rate[hooks]:-0},${p50[hooks]:-0},${p99[hooks]:-0},${t_err[hooks]},$ratio_hooks,$hooks_delivered," >>"$csv"
	# The headline: 32 clients on /16 pools (the first such row), else the first row.
	if [ "$c" -eq 32 ] && [ "$p" -eq 16 ] && [ "${headline_row#32 }" = "$headline_row" ]; then
		headline=$ratio headline_lean=$ratio_lean headline_row="32 clients, /16"
	elif [ -z "$headline_row" ]; then
		headline=$ratio headline_lean=$ratio_lean headline_row="$c clients, /$p (no 32-client /16 row)"
	fi
done

echo
echo "wgfleet reservation benchmark: POST /v1/routers (wrk), pgbench calling the same SQL, and the lean reference"
echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) CPUs; $rounds round(s) of ${duration} s per side; $tenants tenants; $per_tenant pre-filled routers per tenant"
echo "durability: $durability; coordinator [database] connections = $db_conns_effective"
[ -z "${WGF_BENCH_SQL:-}" ] || echo "SQL changed for this run: WGF_BENCH_SQL=$WGF_BENCH_SQL"
[ "$profile" -eq 0 ] || echo "profiling on (pg_stat_statements, track_functions): ${profile_out#"$top"/}"
echo
printf "$fmt" "run" "clients" "pool" "servers" "HTTP/s" "p50 ms" "p99 ms" "errors" \
	"pgb tps" "p50 ms" "p99 ms" "errors" "leantps" "p50 ms" "p99 ms" "errors" \
	"h/pgb" "range" "pgb/l" "range" "pages" "load"
printf '%s\n' "${rows[@]}"
echo
echo "h/pgb = HTTP req/s / pgbench (wgf_api_reserve) tps; pgb/l = pgbench tps / lean"
echo "(wgf_bench_lean_reserve) tps, both over all rounds; range = lowest and highest"
echo "per-round ratio; pages = buffers one address allocation touches in a fresh pool -> the"
echo "most seen right after a measurement; load = lowest-highest 1-minute load average seen"
echo "before the row's measurements. Raw rows: ${csv#"$top"/}"
if [ "$webhooks" -gt 0 ]; then
	echo
	echo "with $webhooks admin webhooks (every event type) to deploy/webhook-receiver.py on 127.0.0.1, $([ "$hooks_deliver" = true ] && echo "delivered by the coordinator" || echo "not delivered (--hooks-undelivered)"):"
	printf '%-3s %7s %4s | %7s %7s %7s | %7s %7s %7s %6s | %6s %9s | %9s\n' "run" "clients" "pool" \
		"HTTP/s" "p50 ms" "p99 ms" "hooks/s" "p50 ms" "p99 ms" "errors" "hooks/h" "range" "delivered"
	printf '%s\n' "${hook_rows[@]}"
	echo "hooks/h = req/s with the webhooks / req/s with none (the HTTP side), over all rounds;"
	echo "range = per round; delivered = deliveries the receiver had acknowledged when each"
	echo "hooks measurement ended, summed over the rounds"
fi

if [ "$failures" -gt 0 ]; then
	echo "FAILED: $failures problem(s), see the messages above"
	exit 1
fi
if [ "$quick" -eq 1 ]; then
	echo "quick run: no timing verdict"
	exit 0
fi
missed=0
if [ "$no_http" -eq 1 ]; then
	echo "target ($headline_row: HTTP >= 0.5x pgbench): not measured (--no-http)"
elif awk -v r="$headline" 'BEGIN { exit !(r >= 0.5) }'; then
	echo "target ($headline_row: HTTP >= 0.5x pgbench): met, ratio $headline"
else
	echo "target ($headline_row: HTTP >= 0.5x pgbench): NOT met, ratio $headline"
	missed=1
fi
if awk -v r="$headline_lean" 'BEGIN { exit !(r >= 0.8) }'; then
	echo "target ($headline_row: wgf_api_reserve >= 0.8x lean): met, ratio $headline_lean"
else
	echo "target ($headline_row: wgf_api_reserve >= 0.8x lean): NOT met, ratio $headline_lean"
	missed=1
fi
[ "$missed" -eq 0 ] || exit 2
