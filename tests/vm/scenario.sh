#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# The kernel backend's scenario, run by /init inside the test VM (busybox sh).
#
# Each step prints its output indented, then one marker line:
#   WGF-OK <step> <the step's last output line, key=value words>
#   WGF-FAIL <step> rc=<status>
# tests/integration/test_agent_kernel.py reads these. Steps: `wgfleet-agent apply`
# creates wg0 (ensure_device: key file, port, address, link up), then the peer set goes
# 0 -> 1,000 -> one peer changed -> a changed subset -> drift made with `wg set`
# repaired -> 0, each checked against `wg show wg0 dump` by wgf-vmtest; then, unless
# WGF_BENCH_PEERS=0, a full apply of that many peers by the agent and by `wg setconf`,
# timed in the same VM.
V=wgf-vmtest
STATE=/run/wgfleet
KEY=$STATE/wireguard.key
CONF=/etc/wgfleet/agent.conf

step() {
	name=$1
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && echo "$out" | sed 's/^/  | /'
	if [ "$rc" -eq 0 ]; then
		echo "WGF-OK $name $(echo "$out" | tail -n1)"
	else
		echo "WGF-FAIL $name rc=$rc"
	fi
	return $rc
}

# wgfleet-agent apply FILE, summarised: the agent prints one line per changed peer
# ('+' added, '~' updated, '-' removed, '!' refused); the log goes to stderr.
agent_apply() {
	$V time wgfleet-agent --config $CONF apply "$1" >apply.out 2>apply.err
	rc=$?
	head -n3 apply.out
	cat apply.err
	a=$(grep -c '^+ ' apply.out)
	u=$(grep -c '^~ ' apply.out)
	d=$(grep -c '^- ' apply.out)
	f=$(grep -c '^! ' apply.out)
	echo "applied set=$((a + u)) added=$a updated=$u removed=$d refused=$f" \
		"$(grep '^ran ' apply.out | cut -d' ' -f3-)"
	return $rc
}

# The daemon holding the peers just applied, in cache-only mode (this VM has no
# coordinator): its memory once its first pass is done ("Ready") and $1 seconds of
# monitor reads have passed. VmHWM covers the first pass's read of the interface.
daemon_memory() {
	wgfleet-agent --config $CONF run --foreground 2>daemon.err &
	pid=$!
	# VmHWM every 0.2 s while the daemon runs, printed where it grew: when the peak came.
	(
		last=0
		while [ -e /proc/$pid/status ]; do
			h=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status 2>/dev/null)
			if [ -n "$h" ] && [ "$h" -gt "$last" ]; then
				echo "hwm_kib=$h at $(cut -d' ' -f1 /proc/uptime) s"
				last=$h
			fi
			sleep 0.2
		done
	) >daemon.hwm 2>&1 &
	i=0
	while ! grep -q 'msg=Ready' daemon.err && [ "$i" -lt 1200 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	grep -q 'msg=Ready' daemon.err || { kill $pid; cat daemon.err; return 1; }
	ready_s=$((i / 2))
	echo "Ready at $(cut -d' ' -f1 /proc/uptime) s"
	sleep "$1"
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status)
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$pid/status)
	kill $pid
	wait $pid
	sleep 0.3
	tail -n 12 daemon.hwm
	echo "daemon ready_s=$ready_s hwm_kib=$hwm rss_kib=$rss"
}

# What the agent set up: the key file's key, the port, the address, the link up.
facts() {
	echo "mode=$(stat -c %a $KEY) port=$(wg show wg0 listen-port)" \
		"pub=$(wg show wg0 public-key)"
	[ "$(wg show wg0 private-key)" = "$(cat $KEY)" ] || { echo "key differs"; return 1; }
	[ "$(wg show wg0 listen-port)" = 51820 ] || return 1
	[ "$(stat -c %a $KEY)" = 600 ] || return 1
	ip -o addr show dev wg0 | grep -q 'inet 10.99.0.1/16' || { ip addr show dev wg0; return 1; }
	ip -o link show dev wg0 | grep -q '[<,]UP[,>]' || { ip link show dev wg0; return 1; }
	echo "facts=ok"
}

same_key() {
	now=$(wg show wg0 public-key)
	echo "pub=$now"
	[ "$now" = "$1" ]
}

cd /tmp || exit 1
mkdir -p /etc/wgfleet
cat >$CONF <<EOF
[agent]
state_directory = $STATE
[wireguard]
interface = wg0
backend = kernel
listen_port = 51820
address = 10.99.0.1/16
[log]
level = notice
EOF
step gen $V gen base 1000 base &&
	step gen-one $V gen one 1000 one &&
	step gen-changed $V gen changed 1000 changed &&
	step gen-empty $V gen base 0 empty

step ensure agent_apply empty.json
step ensure-facts facts
pub=$(wg show wg0 public-key)
step ensure-again agent_apply empty.json
step ensure-again-key same_key "$pub"
# A reboot: the interface is gone, the key file is not; the same key comes back.
ip link del wg0
step ensure-recreate agent_apply empty.json
step ensure-recreate-key same_key "$pub"
step ensure-recreate-facts facts

step apply-empty agent_apply empty.json
step check-empty $V check wg0 empty.peers
step apply-1000 agent_apply base.json
step check-1000 $V check wg0 base.peers
step apply-1000-again agent_apply base.json
step apply-one agent_apply one.json
step check-one $V check wg0 one.peers
step apply-changed agent_apply changed.json
step check-changed $V check wg0 changed.peers

# Drift made by hand: a managed peer's allowed IPs changed, and a stranger added.
drift_key=$(head -n1 changed.peers | cut -d' ' -f1)
stranger=$(wg genkey | wg pubkey)
wg set wg0 peer "$drift_key" allowed-ips 192.0.2.1/32
wg set wg0 peer "$stranger" allowed-ips 192.0.2.2/32
step apply-drift agent_apply changed.json
step check-drift $V check wg0 changed.peers
step apply-zero agent_apply empty.json
step check-zero $V check wg0 empty.peers

# The benchmark: the same peers (no keepalive, see vmtest.c) written by the agent, by
# `wg setconf` and by the bare backend (wgf-vmtest apply), each onto an empty interface
# that keeps its key and port. Reported, not asserted. WGF_BENCH_ROUNDS repeats the
# agent-then-setconf part (one round keeps CI near a minute).
n=${WGF_BENCH_PEERS:-0}
if [ "$n" -gt 0 ]; then
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n' "$(cat $KEY)" >iface.conf
	step bench-gen $V gen quiet "$n" big
	cat iface.conf big.conf >setconf.conf
	round=0
	while [ "$round" -lt "${WGF_BENCH_ROUNDS:-1}" ]; do
		round=$((round + 1))
		step bench-apply-$round agent_apply big.json
		step bench-check-$round $V check wg0 big.peers
		[ "$round" = 1 ] && [ "${WGF_BENCH_DAEMON:-0}" -gt 0 ] &&
			step bench-daemon daemon_memory "$WGF_BENCH_DAEMON"
		step bench-apply-unchanged-$round agent_apply big.json
		step bench-syncconf-unchanged-$round $V time wg syncconf wg0 setconf.conf
		step bench-remove-$round agent_apply empty.json
		step bench-setconf-$round $V time wg setconf wg0 setconf.conf
		step bench-setconf-check-$round $V check wg0 big.peers
		step bench-setconf-key-$round facts
		step bench-setconf-remove-$round $V time wg setconf wg0 iface.conf
		step bench-setconf-remove-check-$round $V check wg0 empty.peers
	done
	step bench-backend-apply $V apply wg0 big.peers
	step bench-backend-check $V check wg0 big.peers
	step bench-backend-remove $V apply wg0 empty.peers
fi
