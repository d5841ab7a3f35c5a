#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# Installs, with apt-get, everything wgfleet's build, quickstart and tests need on a
# fresh Debian 12 machine. Idempotent: a second run installs nothing new and is quick.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (apt-get needs it)" >&2
	exit 1
fi

pkgs=(
	# build
	build-essential meson ninja-build pkg-config clang clang-format clang-tidy
	# libraries the design card fixes, plus the HTTP server, JSON, INI and unit tests
	libnng-dev protobuf-c-compiler libprotobuf-c-dev libpq-dev libsodium-dev libmnl-dev
	libuv1-dev libh2o-dev libssl-dev libjansson-dev libyajl-dev libinih-dev libcmocka-dev liburiparser-dev
	libunistring-dev
	# the operators' command line (wgfleetctl): its HTTP client, and CSV for its import
	libcurl4-openssl-dev libcsv-dev
	# sanitizer runtimes for clang builds
	libclang-rt-14-dev
	# the database and the data plane the tests drive
	postgresql postgresql-contrib wireguard-go wireguard-tools iproute2 iputils-ping
	# the kernel backend's VM test (tests/vm/run.sh): the emulator, a static busybox
	# for the initramfs, cpio to pack it, depmod for the unpacked kernel's modules.dep
	qemu-system-x86 busybox-static cpio kmod
	# the integration test harness and the HTTP client it uses
	python3 python3-pytest python3-yaml curl
	# the certificates of the TLS channel's test (the openssl command line)
	openssl
	# the benchmarks' HTTP load generator (pgbench comes with the postgresql server)
	wrk
	# promtool, which the metrics test checks both daemons' /metrics output with
	prometheus
	# the Debian packages' test (tests/integration/test_packages.py) and the load
	# balancer of the two-coordinator example (deploy/haproxy.cfg)
	dpkg-dev debhelper lintian haproxy
	# the manual pages, made from each binary's --help (deploy/meson.build)
	help2man
	# the dashboard's browser test (tests/integration/test_dashboard.py)
	chromium chromium-driver python3-selenium
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: everything is installed"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
