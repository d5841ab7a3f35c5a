#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# The kernel backend's scenario, run by /init inside the test VM (busybox sh).
#
# Each step prints its output indented, then one marker line:
#   WGF-OK <step> <the step's last output line, key=value words>
#   WGF-FAIL <step> rc=<status>
# tests/integration/test_agent_kernel.py reads these. Steps: the agent creates wg0
# (ensure_device), then the peer set goes 0 -> 1,000 -> one peer changed -> a changed
# subset -> drift made with `wg set` repaired -> 0, each checked against `wg show wg0
# dump`; then, unless WGF_BENCH_PEERS=0, the agent's full apply of that many peers and
# `wg setconf` with the same peers, timed in the same VM.
V=wgf-vmtest
KEY=/run/wgfleet/wg0.key

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
mkdir -p /run/wgfleet
: >empty.peers
step gen $V gen base 1000 base.peers &&
	step gen-one $V gen one 1000 one.peers &&
	step gen-changed $V gen changed 1000 changed.peers

step ensure $V ensure wg0 $KEY 51820 10.99.0.1/16
step ensure-facts facts
pub=$(wg show wg0 public-key)
step ensure-again $V ensure wg0 $KEY 51820 10.99.0.1/16
step ensure-again-key same_key "$pub"
# A reboot: the interface is gone, the key file is not; the same key comes back.
ip link del wg0
step ensure-recreate $V ensure wg0 $KEY 51820 10.99.0.1/16
step ensure-recreate-key same_key "$pub"
step ensure-recreate-facts facts

step apply-empty $V apply wg0 empty.peers
step check-empty $V check wg0 empty.peers
step apply-1000 $V apply wg0 base.peers
step check-1000 $V check wg0 base.peers
step apply-1000-again $V apply wg0 base.peers
step apply-one $V apply wg0 one.peers
step check-one $V check wg0 one.peers
step apply-changed $V apply wg0 changed.peers
step check-changed $V check wg0 changed.peers

# Drift made by hand: a managed peer's allowed IPs changed, and a stranger added.
drift_key=$(head -n1 changed.peers | cut -d' ' -f1)
stranger=$(wg genkey | wg pubkey)
wg set wg0 peer "$drift_key" allowed-ips 192.0.2.1/32
wg set wg0 peer "$stranger" allowed-ips 192.0.2.2/32
step apply-drift $V apply wg0 changed.peers
step check-drift $V check wg0 changed.peers
step apply-zero $V apply wg0 empty.peers
step check-zero $V check wg0 empty.peers

# The benchmark: the same peers (no keepalive, see vmtest.c) written by the agent and by
# `wg setconf`, each onto an empty interface that keeps its key and port, twice in turn
# so that neither always goes first. Reported, not asserted.
n=${WGF_BENCH_PEERS:-0}
if [ "$n" -gt 0 ]; then
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n' "$(cat $KEY)" >iface.conf
	step bench-gen $V gen quiet "$n" big.peers peers.conf
	cat iface.conf peers.conf >big.conf
	for round in 1 2; do
		step bench-apply-$round $V apply wg0 big.peers
		step bench-check-$round $V check wg0 big.peers
		step bench-apply-unchanged-$round $V apply wg0 big.peers
		step bench-syncconf-unchanged-$round $V time wg syncconf wg0 big.conf
		step bench-remove-$round $V apply wg0 empty.peers
		step bench-setconf-$round $V time wg setconf wg0 big.conf
		step bench-setconf-check-$round $V check wg0 big.peers
		step bench-setconf-key-$round facts
		step bench-setconf-remove-$round $V time wg setconf wg0 iface.conf
		step bench-setconf-remove-check-$round $V check wg0 empty.peers
	done
fi
