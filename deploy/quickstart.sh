#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# quickstart.sh: the whole wgfleet story on one machine, printing each step: install
# what is missing, build, start a private PostgreSQL, the coordinator and an agent on a
# userspace WireGuard "VPS" (wireguard-go in a network namespace), then walk a
# simulated router (a second wireguard-go in a second namespace, set up from the
# generated wg-quick text) from reservation to `connected`. The operator's steps use
# wgfleetctl; the portal's use curl, as a portal would speak HTTP.
#
# Everything it starts lives under $WGF_QUICKSTART_DIR (default /tmp/wgfleet-quickstart)
# and in two network namespaces, wgfqs-vps and wgfqs-rtr, joined by a veth pair; no
# traffic leaves them. $WGF_QUICKSTART_NAME (default wgfqs; a lower-case letter, then at
# most 7 letters or digits) names the namespaces, interfaces and veth pair, so a second
# quickstart with a directory and a name of its own runs beside the first. Each run starts afresh, removing what an earlier run left. It
# builds into $WGF_QUICKSTART_BUILD (default build/quickstart); a directory meson has
# set up already, such as the one you build in, is only brought up to date.
# `deploy/quickstart.sh stop` stops it all and `deploy/quickstart.sh clean` also removes
# the data.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${WGF_QUICKSTART_DIR:-/tmp/wgfleet-quickstart}
build=${WGF_QUICKSTART_BUILD:-$top/build/quickstart}
name=${WGF_QUICKSTART_NAME:-wgfqs}
vps_ns=$name-vps
rtr_ns=$name-rtr
vps_if=${name}0
rtr_if=${name}r0
veth_vps=$name-a
veth_rtr=$name-b
vps_ip=172.31.254.1
rtr_ip=172.31.254.2
n=0

step() {
	n=$((n + 1))
	printf '\n[%d] %s\n' "$n" "$*"
}

die() {
	echo "quickstart: $*" >&2
	exit 1
}

kill_pidfile() {
	local f=$run_dir/$1.pid
	if [ -f "$f" ]; then
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	fi
}

stop_all() {
	kill_pidfile agent
	kill_pidfile webhook
	kill_pidfile coordinator
	kill_pidfile wg-vps
	kill_pidfile wg-rtr
	ip netns del "$vps_ns" 2>/dev/null || true
	ip netns del "$rtr_ns" 2>/dev/null || true
	ip link del "$veth_vps" 2>/dev/null || true # left when a run stopped before moving it
	rm -f "/var/run/wireguard/$vps_if.sock" "/var/run/wireguard/$rtr_if.sock"
	[ -d "$run_dir/pg" ] && bash "$top/deploy/pg.sh" stop "$run_dir/pg"
	return 0
}

[[ $name =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
	die "WGF_QUICKSTART_NAME '$name': a lower-case letter, then at most 7 letters or digits"

case "${1:-}" in
stop)
	stop_all
	exit 0
	;;
clean)
	stop_all
	bash "$top/deploy/pg.sh" wipe "$run_dir/pg"
	rm -rf "$run_dir"
	exit 0
	;;
"") ;;
*)
	echo "usage: quickstart.sh [stop|clean]" >&2
	exit 2
	;;
esac

[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and makes network namespaces"

step "Installing what is missing (apt-get)"
bash "$top/deploy/install-deps.sh"

step "Building into $build"
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized -Dtests=false >/dev/null
ninja -C "$build" >/dev/null
coord_bin=$build/coordinator/wgfleet-coordinator
agent_bin=$build/agent/wgfleet-agent
ctl=$build/ctl/wgfleetctl
echo "built $("$coord_bin" version), $("$agent_bin" version) and $ctl"

# Each run tells the story from its beginning: what an earlier run left (its database,
# the agent's state, its keys) goes first.
stop_all >/dev/null 2>&1 || true
if [ -e "$run_dir" ]; then
	[ -f "$run_dir/.wgfleet-quickstart" ] ||
		die "'$run_dir' exists and is not a quickstart directory; not removing it"
	bash "$top/deploy/pg.sh" wipe "$run_dir/pg"
	rm -rf "$run_dir"
fi
mkdir -p "$run_dir"
chmod 0755 "$run_dir"
touch "$run_dir/.wgfleet-quickstart"

step "Starting a private PostgreSQL in $run_dir/pg"
conninfo=$(bash "$top/deploy/pg.sh" start "$run_dir/pg")
echo "database: $conninfo"

step "Applying the schema (wgfleet-coordinator migrate)"
"$coord_bin" --database "$conninfo" migrate

step "Starting the coordinator: HTTP API on 127.0.0.1 (a free port), agent channel on ipc://"
if [ ! -f "$run_dir/api-key.secret" ]; then
	(umask 077 && head -c 32 /dev/urandom | base64 >"$run_dir/api-key.secret")
fi
cat >"$run_dir/coordinator.conf" <<CONF
[database]
conninfo = $conninfo
[http]
listen = 127.0.0.1:0
[channel]
listen = ipc://$run_dir/channel.sock
signing_key_file = $run_dir/coordinator.key
[api]
key_hash_secret_file = $run_dir/api-key.secret
[webhooks]
; the demo's receiver runs on this machine, which webhooks refuse unless allowed
allowed_networks = 127.0.0.0/8
poll_interval = 200ms
CONF
coord=("$coord_bin" --config "$run_dir/coordinator.conf")
coord_pub=$("${coord[@]}" channel-key 2>/dev/null)
setsid "${coord[@]}" serve >"$run_dir/coordinator.log" 2>&1 &
echo $! >"$run_dir/coordinator.pid"
port=""
for _ in $(seq 1 100); do
	port=$(grep -o 'msg=Listening .*port=[0-9]*' "$run_dir/coordinator.log" | grep -o '[0-9]*$' || true)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$run_dir/coordinator.log"; die "the coordinator did not start"; }
api=http://127.0.0.1:$port
echo "coordinator: $api (log: $run_dir/coordinator.log); channel key $coord_pub"

# call METHOD PATH KEY [JSON]: prints the reply, fails on an HTTP error.
call() {
	local args=(-sS --fail-with-body -X "$1" "$api$2" -H "Authorization: Bearer $3")
	[ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' -d "$4")
	curl "${args[@]}"
}
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$1"; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
	local limit=$1 what=$2 i
	shift 2
	for i in $(seq 1 $((limit * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "timed out after ${limit}s waiting for $what"
}

step "Two network namespaces joined by a veth pair: a VPS ($vps_ip) and a router ($rtr_ip)"
ip netns add "$vps_ns"
ip netns add "$rtr_ns"
ip link add "$veth_vps" type veth peer name "$veth_rtr"
ip link set "$veth_vps" netns "$vps_ns"
ip link set "$veth_rtr" netns "$rtr_ns"
ip -n "$vps_ns" addr add "$vps_ip/24" dev "$veth_vps"
ip -n "$rtr_ns" addr add "$rtr_ip/24" dev "$veth_rtr"
for ns in "$vps_ns" "$rtr_ns"; do
	ip -n "$ns" link set lo up
done
ip -n "$vps_ns" link set "$veth_vps" up
ip -n "$rtr_ns" link set "$veth_rtr" up
setsid ip netns exec "$vps_ns" wireguard-go -f "$vps_if" >"$run_dir/wg-vps.log" 2>&1 &
echo $! >"$run_dir/wg-vps.pid"
setsid ip netns exec "$rtr_ns" wireguard-go -f "$rtr_if" >"$run_dir/wg-rtr.log" 2>&1 &
echo $! >"$run_dir/wg-rtr.pid"
wait_until 10 "wireguard-go" test -S "/var/run/wireguard/$vps_if.sock" -a -S "/var/run/wireguard/$rtr_if.sock"
echo "wireguard-go runs in both: $vps_if on the VPS, $rtr_if on the router"

step "Bootstrapping an admin key, then (wgfleetctl) a demo tenant and its portal key"
admin=$("${coord[@]}" create-admin-key 2>/dev/null)
echo "admin key: ${admin:0:20}... (shown once; only its keyed hash is stored)"
# wgfleetctl takes the URL and the key from the environment (never a key on its command
# line, where ps would show it).
export WGFLEET_URL=$api WGFLEET_KEY=$admin
"$ctl" tenants add demo --name "Demo tenant" --router-quota 10 >/dev/null
tenant_key=$("$ctl" keys create --tenant demo --label portal 2>/dev/null)
echo "tenant 'demo', portal key: ${tenant_key:0:20}..."
"$ctl" tenants list

step "A webhook: a receiver on 127.0.0.1 that checks each event's signature (wgfleetctl webhooks add)"
hook_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(umask 077 && "$ctl" webhooks add "http://127.0.0.1:$hook_port/wgfleet" \
	--event router.reserved,router.configured,router.vps_ready,router.connected \
	--description "quickstart demo" 2>/dev/null >"$run_dir/webhook.secret")
setsid python3 "$top/deploy/webhook-receiver.py" "$hook_port" "$run_dir/webhook.secret" \
	>"$run_dir/webhook.log" 2>&1 &
echo $! >"$run_dir/webhook.pid"
echo "receiver on 127.0.0.1:$hook_port; its signing secret is in $run_dir/webhook.secret (shown once)"

step "The VPS's agent: its signing key (wgfleet-agent init), then the server's registration"
cat >"$run_dir/agent.conf" <<CONF
[agent]
state_directory = $run_dir/agent
[wireguard]
interface = $vps_if
backend = userspace
listen_port = 51820
address = 10.100.0.1/24
[monitor]
interval = 1s
[coordinator]
urls = ipc://$run_dir/channel.sock
public_key = $coord_pub
server = vps1
CONF
agent_key=$("$agent_bin" --config "$run_dir/agent.conf" init 2>/dev/null)
"$ctl" servers add vps1 --endpoint "$vps_ip:51820" --pool 10.100.0.0/24 \
	--gateway 10.100.0.1 --agent-key "$agent_key" >/dev/null
echo "server vps1 registered (wgfleetctl servers add): endpoint $vps_ip:51820, pool 10.100.0.0/24, agent key $agent_key"

step "Starting the agent on the VPS (userspace WireGuard: this kernel has no WireGuard module)"
setsid ip netns exec "$vps_ns" "$agent_bin" --config "$run_dir/agent.conf" run --foreground \
	>/dev/null 2>"$run_dir/agent.log" &
echo $! >"$run_dir/agent.pid"
server_key() { "$ctl" servers show vps1 --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["public_key"]; print(s["public_key"])'; }
wait_until 15 "the agent's report" server_key
echo "the agent set $vps_if up and reported its public key: $(server_key)"

step "The portal reserves an address for a router (POST /v1/routers)"
router=$(call POST /v1/routers "$tenant_key" '{"name":"shop-router"}')
router_id=$(echo "$router" | field id)
echo "$router" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("router", r["id"], "got", r["vpn_ip"], "status", r["vpn_status"], "until", r["reservation_expires_at"])'

step "The tenant reads the setup text (GET /v1/routers/ID/config?format=wg-quick)"
setup=$(call GET "/v1/routers/$router_id/config?format=wg-quick" "$tenant_key")
echo "$setup"

step "The simulated router follows the setup text with a key of its own"
router_priv=$(wg genkey)
router_pub=$(echo "$router_priv" | wg pubkey)
conf_value() { echo "$setup" | sed -n "s/^$1 = //p"; }
(umask 077 && echo "$router_priv" >"$run_dir/router.key")
ip -n "$rtr_ns" addr add "$(conf_value Address)" dev "$rtr_if"
ip -n "$rtr_ns" link set "$rtr_if" up
ip netns exec "$rtr_ns" wg set "$rtr_if" private-key "$run_dir/router.key" \
	peer "$(conf_value PublicKey)" endpoint "$(conf_value Endpoint)" \
	allowed-ips "$(conf_value AllowedIPs)" persistent-keepalive "$(conf_value PersistentKeepalive)"
echo "router $rtr_if: address $(conf_value Address), peer $(conf_value Endpoint); its public key: $router_pub"

step "The portal submits the router's public key (PUT /v1/routers/ID/public-key)"
call PUT "/v1/routers/$router_id/public-key" "$tenant_key" "{\"public_key\":\"$router_pub\"}" |
	python3 -c 'import json,sys; print("status:", json.load(sys.stdin)["vpn_status"])'
start=$(date +%s%N)
on_vps() { ip netns exec "$vps_ns" wg show "$vps_if" peers | grep -qx "$router_pub"; }
wait_until 10 "the peer on the VPS" on_vps
echo "the peer is on the VPS interface $(( ($(date +%s%N) - start) / 1000000 )) ms after the API answered"

step "Traffic crosses the tunnel, and the router's status follows the handshake"
wait_until 20 "a ping through the tunnel" ip netns exec "$rtr_ns" ping -c 1 -W 1 10.100.0.1
echo "ping from the router to the VPS's 10.100.0.1 through WireGuard: ok"
connected() { call GET "/v1/routers/$router_id" "$tenant_key" | python3 -c 'import json,sys; assert json.load(sys.stdin)["vpn_status"]=="connected"'; }
wait_until 30 "status connected" connected
call GET "/v1/routers/$router_id" "$tenant_key" |
	python3 -c 'import json,sys; r=json.load(sys.stdin); print("status:", r["vpn_status"], "| last handshake:", r["last_handshake_at"], "| endpoint:", r["endpoint"])'

step "The webhook heard every step, each signed (deploy/webhook-receiver.py's log)"
hook_connected() { grep -q "^ok router.connected" "$run_dir/webhook.log"; }
wait_until 10 "router.connected at the webhook" hook_connected
cat "$run_dir/webhook.log"

step "The audit log tells the router's whole story (wgfleetctl audit --router ID)"
"$ctl" audit --router "$router_id"

step "The routers across tenants (wgfleetctl routers list)"
"$ctl" routers list

printf '\nDone. Everything still runs (stop it with: deploy/quickstart.sh stop); with the\n'
printf 'admin key in WGFLEET_KEY, WGFLEET_URL=%s %s status\n' "$api" "$ctl"
printf 'prints what comes last here, and the dashboard is at %s/dashboard (it asks for\n' "$api"
printf 'that admin key and keeps it in the browser tab).\n'

step "The fleet at a glance (wgfleetctl status)"
# Exit 4 means a server is offline or behind: say so, but the story has been told.
"$ctl" status || echo "(wgfleetctl status exited $?: a server is offline or lagging)"
