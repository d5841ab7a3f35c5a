#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# quickstart.sh: the whole wgfleet story on one machine, printing each step. It installs
# what is missing, builds, starts a private PostgreSQL, and runs as much of the story
# as exists today, then says plainly what is not there yet.
#
# Everything it starts lives under $WGF_QUICKSTART_DIR (default /tmp/wgfleet-quickstart);
# `deploy/quickstart.sh stop` stops it and `deploy/quickstart.sh clean` removes it.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${WGF_QUICKSTART_DIR:-/tmp/wgfleet-quickstart}
build=$top/build/quickstart
n=0

step() {
	n=$((n + 1))
	printf '\n[%d] %s\n' "$n" "$*"
}

case "${1:-}" in
stop)
	bash "$top/deploy/pg.sh" stop "$run_dir/pg"
	exit 0
	;;
clean)
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

step "Installing what is missing (apt-get)"
if [ "$(id -u)" -eq 0 ]; then
	bash "$top/deploy/install-deps.sh"
else
	echo "not root: skipping; run 'sudo deploy/install-deps.sh' if the build fails"
fi

step "Building into $build"
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized -Dtests=false >/dev/null
ninja -C "$build" >/dev/null
echo "built $("$build/coordinator/wgfleet-coordinator" version) and $("$build/agent/wgfleet-agent" version)"

step "Starting a private PostgreSQL in $run_dir/pg"
mkdir -p "$run_dir"
chmod 0755 "$run_dir"
conninfo=$(bash "$top/deploy/pg.sh" start "$run_dir/pg")
echo "database: $conninfo"

step "Applying the schema (wgfleet-coordinator migrate)"
"$build/coordinator/wgfleet-coordinator" --database "$conninfo" migrate
"$build/coordinator/wgfleet-coordinator" --database "$conninfo" migrate-status

step "Creating the agent's signing key (wgfleet-agent init)"
mkdir -p "$run_dir/agent"
cat >"$run_dir/agent.conf" <<CONF
[agent]
state_directory = $run_dir/agent
CONF
agent_key=$("$build/agent/wgfleet-agent" --config "$run_dir/agent.conf" init 2>/dev/null)
echo "agent public key (register it with the server): $agent_key"

step "Not there yet"
cat <<'TXT'
The rest of the story arrives with the issues that build it:
  - the coordinator's HTTP API: demo tenant, API key, reserving an address,
    submitting the router's public key, status and setup text (issue #3);
  - the agent's reconciler on a userspace WireGuard interface (issue #4);
  - the signed nng channel that turns a submitted key into a peer and a handshake
    into "connected" (issue #5).
TXT

printf '\nDone. PostgreSQL is still running; stop it with: deploy/quickstart.sh stop\n'
