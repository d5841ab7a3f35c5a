#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# reserve.sh: the reservation benchmark (issue 6, item 1). Measures, side by side in
# one run on one database, POST /v1/routers through the coordinator (wrk with
# keep-alive connections and tests/bench/reserve.lua) and pgbench calling the SQL
# function the coordinator calls for it (wgf_api_reserve, -M prepared), with the same
# number of clients and the same duration, and reports HTTP/pgbench per row. The
# target (issue 3): HTTP >= 0.5x pgbench.
#
#   tests/bench/reserve.sh [--quick] [--duration S] [--rounds R] [--db-connections N]
#                          [--tenants N] [--capacity N]
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
#
# Environment: WGF_PG_FAST=1 turns PostgreSQL's durability off for both sides (the
# default is a durable cluster: fsync and synchronous_commit on). WGF_BENCH_BUILD=DIR
# uses the coordinator already built in DIR instead of building build/bench.
#
# It builds build/bench (meson, --buildtype=release) when needed, starts a private
# PostgreSQL (deploy/pg.sh) and a coordinator on 127.0.0.1 (port 0) in a temporary
# directory, creates tenants whose quota and reservation rate are far above what a run
# uses, their keys, and servers with /16, /20 and /24 pools. Rows: 1, 8, 32 and 128
# clients on /16 pools, then /24, /20 and /16 pools at 32 clients. Requests name their
# server, rotating over the row's servers, so no reservation depends on how many
# servers exist. Before every measurement the pools are refilled, the routers and
# audit rows of earlier runs are removed, and the tables are vacuumed and
# checkpointed, so each starts from the same state. Traffic goes only to 127.0.0.1
# and the database's unix socket. Everything it started is stopped and removed on exit.
#
# Prints a table (req/s, p50, p99, errors for each side, the ratio per row, and the
# buffers one address allocation touches) and writes every measurement to
# build/bench/results/reserve-<time>.csv. Exit status: 0 when every run succeeded
# (and, in a full run, the 32-client target is met); 2 when the runs succeeded but the
# target was missed; 1 when something failed outright (a non-201 answer, a socket
# error, a pgbench error or abort, a setup step).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench_dir=$top/tests/bench
quick=0
duration=
rounds=
db_connections=
tenants=
capacity=

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
[ "$tenants" -ge 1 ] && [ "$tenants" -le 128 ] || { echo "reserve.sh: --tenants 1..128" >&2; exit 1; }
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

cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	if [ -n "$child_pid" ] && kill -0 "$child_pid" 2>/dev/null; then
		kill -TERM "$child_pid" 2>/dev/null || true
		wait "$child_pid" 2>/dev/null || true
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
} >"$tmp/coordinator.conf"
coord() { bounded 60 "$coordinator" --config "$tmp/coordinator.conf" "$@"; }
coord check-config >/dev/null || die "the benchmark's coordinator.conf is refused"
coord migrate >/dev/null 2>"$tmp/migrate.log" || die "migrate failed: $(cat "$tmp/migrate.log")"
coord channel-key >/dev/null 2>&1 || die "channel-key failed"
admin_key=$(coord create-admin-key 2>/dev/null) || die "create-admin-key failed"
db_conns_effective=$(coord dump-config 2>/dev/null | awk -F' = ' '$1 == "connections" { print $2; exit }')

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
		read -r now active < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM routers),
			(SELECT count(*) FROM pg_stat_activity
			 WHERE application_name = 'wgfleet-coordinator' AND state = 'active')")
		[ "$active" -eq 0 ] && [ "$now" -eq "$prev" ] && return 0
		prev=$now
		sleep 0.2
	done
	die "the coordinator did not go idle within 30 s"
}

# Puts every address back in its pool and drops what earlier runs made, then vacuums
# and checkpoints: each measurement starts from the same state.
reset_state() {
	quiesce
	sql -c "BEGIN; TRUNCATE routers, changes, audit_log, idempotency_keys;
		UPDATE pool_addresses SET router_id = NULL, free_since = '-infinity'
		WHERE router_id IS NOT NULL;
		UPDATE server_usage SET used = 0 WHERE used <> 0; COMMIT" \
		-c "VACUUM (ANALYZE) pool_addresses, routers, audit_log, server_usage, tenants" \
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

# http_slice CLIENTS FIRST LAST: one wrk run. Sets s_rate s_p50 s_p99 s_err and adds
# to h_ok h_us h_err and the histogram $tmp/h.hist.
http_slice() {
	local c=$1 first=$2 last=$3 out line rc=0 kv pct
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
		h_err=$((h_err + 1))
		return
	fi
	for kv in ${line#WGF_WRK }; do f[${kv%%=*}]=${kv#*=}; done
	s_err=$((f[non201] + f[socket_errors]))
	[ "$s_err" -eq 0 ] || log "  wrk: ${f[non201]} non-201 answers (${f[statuses]}), ${f[socket_errors]} socket errors; $(grep -m 1 '^reserve.lua' "$out" || true)"
	s_rate=$(awk -v n="${f[ok]}" -v us="${f[duration_us]}" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
	pct=$(percentiles "$tmp/wrk.hist")
	s_p50=$(ms "${pct% *}") s_p99=$(ms "${pct#* }")
	h_ok=$((h_ok + f[ok]))
	h_us=$((h_us + f[duration_us]))
	h_err=$((h_err + s_err))
	cat "$tmp/wrk.hist" >>"$tmp/h.hist"
}

# pgbench_slice CLIENTS FIRST LAST: one pgbench run. Sets s_rate s_p50 s_p99 s_err and
# adds to g_ok g_us g_err and the histogram $tmp/g.hist.
pgbench_slice() {
	local c=$1 first=$2 last=$3 out rc=0 processed failed tps pct

	out=$tmp/pgbench.out
	rm -rf "$tmp/pgblog"
	mkdir -p "$tmp/pgblog"
	bounded $((duration + 60)) pgbench -n -M prepared -c "$c" -j "$(threads_for "$c")" \
		-T "$duration" -D first="$first" -D last="$last" "${pgbench_files[@]}" \
		-l --log-prefix="$tmp/pgblog/tx" "$conninfo" >"$out" 2>&1 || rc=$?
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
	s_err=$((${failed:-0}))
	if [ "$rc" -ne 0 ] || [ -z "$processed" ] || [ -z "$tps" ]; then
		log "  pgbench failed (exit $rc): $(grep -m 2 -E 'ERROR|abort|FATAL|error' "$out" | tr '\n' ' ')"
		s_err=$((s_err + 1))
	fi
	[ "${failed:-0}" -eq 0 ] || log "  pgbench: $failed failed transactions"
	s_rate=$(awk -v t="${tps:-0}" 'BEGIN { printf "%.0f", t }')
	# Latencies from the per-transaction log (third column, microseconds).
	cat "$tmp/pgblog"/tx* 2>/dev/null | awk '{ print $3, 1 }' >"$tmp/pgbench.hist"
	pct=$(percentiles "$tmp/pgbench.hist")
	s_p50=$(ms "${pct% *}") s_p99=$(ms "${pct#* }")
	if [ -n "$processed" ] && [ "$s_rate" != 0 ]; then
		g_ok=$((g_ok + processed))
		g_us=$((g_us + $(awk -v n="$processed" -v t="$tps" 'BEGIN { printf "%.0f", n / t * 1e6 }')))
	fi
	g_err=$((g_err + s_err))
	cat "$tmp/pgbench.hist" >>"$tmp/g.hist"
	rm -rf "$tmp/pgblog"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
suffix=
[ "$quick" -eq 0 ] || suffix=-quick
csv=$results_dir/reserve-$stamp$suffix.csv
durability_word=durable
[ "$fast" -eq 0 ] || durability_word=fast
echo "date,run,round,clients,pool,servers,duration_s,durability,db_connections,http_rps,http_p50_ms,http_p99_ms,http_errors,pgbench_tps,pgbench_p50_ms,pgbench_p99_ms,pgbench_errors,ratio,alloc_pages_fresh,alloc_pages_end" >"$csv"

rate_of() { awk -v n="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.0f", n / (us / 1e6); else print 0 }'; }
ratio_of() { awk -v h="$1" -v g="$2" 'BEGIN { if (g > 0) printf "%.2f", h / g; else print "0.00" }'; }

fmt='%-3s %7s %4s %7s | %7s %7s %7s %6s | %7s %7s %7s %6s | %5s %11s | %9s\n'
rows=()
failures=0
headline=
run=0
for cfg in "${configs[@]}"; do
	run=$((run + 1))
	c=${cfg%%:*}
	p=${cfg#*:}
	first=$((p * 10000 + 1))
	last=$((p * 10000 + ${n_servers[$p]}))
	log "run $run/${#configs[@]}: $c clients, ${n_servers[$p]} x /$p pools, $rounds x ${duration} s each side"
	h_ok=0 h_us=0 h_err=0 g_ok=0 g_us=0 g_err=0
	: >"$tmp/h.hist"
	: >"$tmp/g.hist"
	reset_state
	pages_fresh=$(alloc_pages "$first")
	pages_end=0
	rmin= rmax=
	for r in $(seq "$rounds"); do
		round_pages=0
		# Alternate which side goes first, so drift in the machine's load evens out.
		for side in $([ $((r % 2)) -eq 1 ] && echo "http pgbench" || echo "pgbench http"); do
			reset_state
			if [ "$side" = http ]; then
				http_slice "$c" "$first" "$last"
				hr=$s_rate h50=$s_p50 h99=$s_p99 he=$s_err
			else
				pgbench_slice "$c" "$first" "$last"
				gr=$s_rate g50=$s_p50 g99=$s_p99 ge=$s_err
			fi
			pg=$(alloc_pages "$first")
			[ "${pg:-0}" -le "$round_pages" ] || round_pages=$pg
			[ "${pg:-0}" -le "$pages_end" ] || pages_end=$pg
		done
		rr=$(ratio_of "$hr" "$gr")
		rmin=$(awk -v a="${rmin:-$rr}" -v b="$rr" 'BEGIN { print (b < a ? b : a) }')
		rmax=$(awk -v a="${rmax:-$rr}" -v b="$rr" 'BEGIN { print (b > a ? b : a) }')
		echo "$stamp,$run,$r,$c,/$p,${n_servers[$p]},$duration,$durability_word,$db_conns_effective,$hr,$h50,$h99,$he,$gr,$g50,$g99,$ge,$rr,$pages_fresh,$round_pages" >>"$csv"
	done
	h_rps=$(rate_of "$h_ok" "$h_us")
	g_tps=$(rate_of "$g_ok" "$g_us")
	pct=$(percentiles "$tmp/h.hist")
	h_p50=$(ms "${pct% *}") h_p99=$(ms "${pct#* }")
	pct=$(percentiles "$tmp/g.hist")
	g_p50=$(ms "${pct% *}") g_p99=$(ms "${pct#* }")
	ratio=$(ratio_of "$h_rps" "$g_tps")
	[ "$h_err" -eq 0 ] || failures=$((failures + 1))
	[ "$g_err" -eq 0 ] || failures=$((failures + 1))
	if [ "$h_rps" = 0 ] || [ "$g_tps" = 0 ]; then
		log "  a side measured nothing"
		failures=$((failures + 1))
	fi
	rows+=("$(printf "$fmt" "$run" "$c" "/$p" "${n_servers[$p]}" "$h_rps" "$h_p50" "$h_p99" \
		"$h_err" "$g_tps" "$g_p50" "$g_p99" "$g_err" "$ratio" "$rmin-$rmax" \
		"$pages_fresh->$pages_end")")
	echo "$stamp,$run,all,$c,/$p,${n_servers[$p]},$((duration * rounds)),$durability_word,$db_conns_effective,$h_rps,$h_p50,$h_p99,$h_err,$g_tps,$g_p50,$g_p99,$g_err,$ratio,$pages_fresh,$pages_end" >>"$csv"
	# The headline: 32 clients on /16 pools (the first such row).
	if [ "$c" -eq 32 ] && [ "$p" -eq 16 ] && [ -z "$headline" ]; then
		headline=$ratio
	fi
done

echo
echo "wgfleet reservation benchmark: POST /v1/routers (wrk) against pgbench calling the same SQL"
echo "date $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) CPUs; $rounds round(s) of ${duration} s per side; $tenants tenants"
echo "durability: $durability; coordinator [database] connections = $db_conns_effective"
echo
printf "$fmt" "run" "clients" "pool" "servers" "HTTP/s" "p50 ms" "p99 ms" "errors" \
	"pgb tps" "p50 ms" "p99 ms" "errors" "ratio" "round range" "pages/alloc"
printf '%s\n' "${rows[@]}"
echo
echo "ratio = HTTP req/s / pgbench tps over all rounds; round range = lowest and highest"
echo "per-round ratio; pages/alloc = buffers one address allocation touches in a fresh pool"
echo "-> the most seen right after a measurement. Raw rows: ${csv#"$top"/}"

if [ "$failures" -gt 0 ]; then
	echo "FAILED: $failures problem(s), see the messages above"
	exit 1
fi
if [ "$quick" -eq 1 ]; then
	echo "quick run: no timing verdict"
	exit 0
fi
if awk -v r="$headline" 'BEGIN { exit !(r >= 0.5) }'; then
	echo "target (32 clients, HTTP >= 0.5x pgbench): met, ratio $headline"
else
	echo "target (32 clients, HTTP >= 0.5x pgbench): NOT met, ratio $headline"
	exit 2
fi
