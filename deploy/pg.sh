#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
#
# pg.sh: a private PostgreSQL cluster in a directory, for the quickstart, the tests and
# the benchmarks. Nobody has to set up a database by hand.
#
#   pg.sh start DIR     create the cluster if DIR has none, start it, create the
#                       database, print its libpq connection string
#   pg.sh conninfo DIR  print the connection string
#   pg.sh status DIR    exit 0 when it runs
#   pg.sh stop DIR      stop it (fast shutdown)
#   pg.sh wipe DIR      stop it and delete DIR
#   pg.sh standby PRIMARY DIR
#                       a streaming standby of PRIMARY in DIR (pg_basebackup -R),
#                       started; prints its connection string
#   pg.sh promote DIR   promote the standby in DIR to a primary (a new timeline)
#
# The server listens only on a unix socket inside DIR (no TCP port, so clusters in
# different directories never collide). PostgreSQL refuses to run as root, so as root
# the server runs as the unprivileged user $WGF_PG_USER (default wgfleet-pg), created
# when missing; as anyone else it runs as that user. Clients connect with trust
# authentication over the socket as database user "wgfleet", so only keep it on a
# machine whose local users you trust; it is a development and test cluster.
#
# WGF_PG_FAST=1 trades durability for speed (fsync, synchronous_commit and
# full_page_writes off): for tests, never for data you keep.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_USER=${WGF_PG_USER:-wgfleet-pg}
DB_USER=wgfleet
DB_NAME=${WGF_PG_DB:-wgfleet}
PORT=5432

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

[ -x "$PGBIN/pg_ctl" ] || die "no PostgreSQL server found (install the postgresql package)"

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$PG_USER" -- "$@"
	else
		"$@"
	fi
}

ensure_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	if ! id -u "$PG_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
	fi
}

conninfo() {
	echo "host=$1/sock port=$PORT dbname=$DB_NAME user=$DB_USER"
}

is_running() {
	[ -f "$1/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

cmd_start() {
	local dir

	dir=$(realpath -m "$1")
	local sock="$dir/sock/.s.PGSQL.$PORT"
	[ "${#sock}" -lt 108 ] || die "'$dir' is too long for a unix socket path (${#sock} >= 108 bytes)"
	mkdir -p "$dir"
	ensure_user
	if is_running "$dir"; then
		conninfo "$dir"
		return 0
	fi
	if [ "$(id -u)" -eq 0 ]; then
		chown "$PG_USER:" "$dir"
		chmod 0755 "$dir"
		runuser -u "$PG_USER" -- test -x "$dir" ||
			die "user $PG_USER cannot reach '$dir'; choose a directory whose parents are world-searchable"
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner mkdir -p "$dir/data" "$dir/sock"
		as_owner "$PGBIN/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
			die "initdb failed; see $dir/initdb.log"
		{
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$dir/sock'"
			echo "port = $PORT"
			echo "max_connections = 200"
			echo "shared_buffers = 128MB"
			echo "logging_collector = off"
			if [ "${WGF_PG_FAST:-0}" = 1 ]; then
				echo "fsync = off"
				echo "synchronous_commit = off"
				echo "full_page_writes = off"
			fi
		} | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
	fi
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		die "the server did not start; see $dir/server.log"
	if ! "$PGBIN/psql" -h "$dir/sock" -p "$PORT" -U "$DB_USER" -d postgres -Atqc \
		"SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
		"$PGBIN/createdb" -h "$dir/sock" -p "$PORT" -U "$DB_USER" "$DB_NAME"
	fi
	conninfo "$dir"
}

# A streaming standby of the cluster in PRIMARY, in DIR: a pg_basebackup of it (with
# standby.signal and primary_conninfo written by -R), listening on DIR's own socket.
cmd_standby() {
	local primary dir

	primary=$(realpath -m "$1")
	dir=$(realpath -m "$2")
	is_running "$primary" || die "'$primary' is not running"
	[ ! -e "$dir/data" ] || die "'$dir/data' exists already"
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$PG_USER:" "$dir"
		chmod 0755 "$dir"
	fi
	as_owner mkdir -p "$dir/sock"
	as_owner "$PGBIN/pg_basebackup" -h "$primary/sock" -p "$PORT" -U "$DB_USER" \
		-D "$dir/data" -R -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 ||
		die "pg_basebackup failed; see $dir/basebackup.log"
	echo "unix_socket_directories = '$dir/sock'" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		die "the standby did not start; see $dir/server.log"
	conninfo "$dir"
}

# Promotes the standby in DIR to a primary (a new timeline), waiting until it is one.
cmd_promote() {
	as_owner "$PGBIN/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null ||
		die "promotion failed; see $1/server.log"
}

cmd_stop() {
	local dir=$1

	[ -d "$dir/data" ] || return 0
	if is_running "$dir"; then
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
	fi
}

cmd_wipe() {
	local dir=$1

	[ -d "$dir" ] || return 0
	[ -f "$dir/data/PG_VERSION" ] || [ ! -e "$dir/data" ] ||
		die "'$dir' does not look like a pg.sh cluster; not deleting it"
	cmd_stop "$dir"
	rm -rf "$dir"
}

[ $# -eq 2 ] || [ "$1" = standby ] ||
	die "usage: pg.sh start|stop|status|conninfo|wipe|promote DIR, or pg.sh standby PRIMARY DIR"
case $1 in
start) cmd_start "$2" ;;
standby)
	[ $# -eq 3 ] || die "usage: pg.sh standby PRIMARY DIR"
	cmd_standby "$2" "$3"
	;;
promote) cmd_promote "$2" ;;
stop) cmd_stop "$2" ;;
wipe) cmd_wipe "$2" ;;
status) is_running "$2" ;;
conninfo) conninfo "$(realpath -m "$2")" ;;
*) die "unknown command '$1'" ;;
esac
