-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0001_core: tenants, API keys, servers and their address pools, routers, the
-- per-server change log and the audit log. Every invariant that matters is a
-- constraint here (DESIGN.md principle 1): one live router per address per server,
-- one live router per WireGuard public key, only legal status transitions.

CREATE TABLE tenants (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	router_quota integer NOT NULL DEFAULT 100 CHECK (router_quota >= 0),
	reservations_per_hour integer NOT NULL DEFAULT 5 CHECK (reservations_per_hour >= 0),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are shown once; only a keyed hash of the secret part is stored. The prefix is
-- the public, non-secret handle used to find the row.
CREATE TABLE api_keys (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id bigint REFERENCES tenants (id) ON DELETE CASCADE,
	scope text NOT NULL CHECK (scope IN ('tenant', 'admin')),
	prefix text NOT NULL UNIQUE CHECK (length(prefix) BETWEEN 8 AND 32),
	hash bytea NOT NULL CHECK (length(hash) = 32),
	label text CHECK (length(label) <= 200),
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz,
	CHECK ((scope = 'admin') = (tenant_id IS NULL))
);

CREATE TABLE servers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
	endpoint text NOT NULL CHECK (length(endpoint) BETWEEN 3 AND 261),
	interface text NOT NULL DEFAULT 'wg0' CHECK (interface ~ '^[A-Za-z0-9_.-]{1,15}$'),
	pool cidr NOT NULL,
	gateway inet NOT NULL,
	-- The agent's Ed25519 key, registered by the operator; signs its reports.
	agent_key bytea UNIQUE CHECK (length(agent_key) = 32),
	-- What the agent reports of its interface, used in the setup text.
	wg_public_key bytea CHECK (length(wg_public_key) = 32),
	wg_listen_port integer CHECK (wg_listen_port BETWEEN 1 AND 65535),
	-- revision: the newest change appended; applied_revision: the newest the agent
	-- reported as applied.
	revision bigint NOT NULL DEFAULT 0 CHECK (revision >= 0),
	applied_revision bigint NOT NULL DEFAULT 0 CHECK (applied_revision >= 0),
	last_seen_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (gateway << pool),
	CHECK (applied_revision <= revision)
);

-- The free list. One row per assignable address of a server's pool (network,
-- gateway and broadcast are never inserted). A free row has router_id NULL;
-- allocation takes the free row that has been free longest, FOR UPDATE SKIP
-- LOCKED, through the partial index, so it is O(log n) and concurrent reservations
-- never wait on each other. free_since gives released addresses their cool-down.
CREATE TABLE pool_addresses (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	ip inet NOT NULL,
	router_id uuid UNIQUE,
	free_since timestamptz NOT NULL DEFAULT '-infinity',
	PRIMARY KEY (server_id, ip)
);
CREATE INDEX pool_addresses_free ON pool_addresses (server_id, free_since)
	WHERE router_id IS NULL;

CREATE TYPE router_status AS ENUM (
	'pending', 'configured', 'vps_ready', 'connected', 'disconnected', 'failed',
	'expired', 'deleted'
);

CREATE TABLE routers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	server_id bigint NOT NULL REFERENCES servers (id),
	name text CHECK (length(name) <= 100),
	vpn_ip inet NOT NULL,
	public_key bytea CHECK (length(public_key) = 32),
	status router_status NOT NULL DEFAULT 'pending',
	status_reason text CHECK (length(status_reason) <= 500),
	created_at timestamptz NOT NULL DEFAULT now(),
	reservation_expires_at timestamptz NOT NULL,
	configured_at timestamptz,
	-- Set when the address goes back to the pool (deleted or expired): the lease
	-- of vpn_ip ran from created_at to released_at.
	released_at timestamptz,
	last_handshake_at timestamptz,
	endpoint text CHECK (length(endpoint) <= 64),
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	-- The revision of the change that put the current key on the server.
	key_revision bigint,
	CHECK ((status IN ('expired', 'deleted')) = (released_at IS NOT NULL)),
	-- Past pending, a router has a key: the peer the server knows it by.
	CHECK (status IN ('pending', 'expired', 'deleted') OR public_key IS NOT NULL)
);
CREATE UNIQUE INDEX routers_live_ip ON routers (server_id, vpn_ip)
	WHERE released_at IS NULL;
CREATE UNIQUE INDEX routers_live_public_key ON routers (public_key)
	WHERE public_key IS NOT NULL AND released_at IS NULL;
CREATE INDEX routers_tenant ON routers (tenant_id, created_at, id);
CREATE INDEX routers_pending_expiry ON routers (reservation_expires_at)
	WHERE status = 'pending';
CREATE INDEX routers_lease ON routers (vpn_ip, created_at);

-- DESIGN.md principle 7: the only legal moves. A key rotation moves any keyed
-- state back to configured.
CREATE TABLE router_transitions (
	from_status router_status NOT NULL,
	to_status router_status NOT NULL,
	PRIMARY KEY (from_status, to_status)
);
INSERT INTO router_transitions (from_status, to_status) VALUES
	('pending', 'configured'), ('pending', 'expired'), ('pending', 'deleted'),
	('configured', 'configured'), ('configured', 'vps_ready'), ('configured', 'failed'),
	('configured', 'deleted'),
	('vps_ready', 'connected'), ('vps_ready', 'configured'), ('vps_ready', 'failed'),
	('vps_ready', 'deleted'),
	('connected', 'disconnected'), ('connected', 'configured'), ('connected', 'deleted'),
	('disconnected', 'connected'), ('disconnected', 'configured'),
	('disconnected', 'deleted'),
	('failed', 'configured'), ('failed', 'deleted');

CREATE FUNCTION routers_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
		SELECT 1 FROM router_transitions
		WHERE from_status = OLD.status AND to_status = NEW.status) THEN
		RAISE EXCEPTION 'illegal router status transition % -> %', OLD.status, NEW.status
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER routers_transition BEFORE UPDATE OF status ON routers
	FOR EACH ROW EXECUTE FUNCTION routers_check_transition();

-- The change log: each change to a server's desired peer set, numbered by the
-- server's revision in the same transaction as the API call that made it.
CREATE TABLE changes (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	revision bigint NOT NULL CHECK (revision > 0),
	op text NOT NULL CHECK (op IN ('upsert', 'remove')),
	router_id uuid NOT NULL REFERENCES routers (id),
	public_key bytea NOT NULL CHECK (length(public_key) = 32),
	allowed_ips cidr[] NOT NULL DEFAULT '{}',
	persistent_keepalive integer NOT NULL DEFAULT 0 CHECK (persistent_keepalive BETWEEN 0 AND 65535),
	committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	applied_at timestamptz,
	PRIMARY KEY (server_id, revision)
);

-- Who did what, when; written in the same transaction as the change it records.
CREATE TABLE audit_log (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	tenant_id bigint REFERENCES tenants (id),
	api_key_id bigint REFERENCES api_keys (id),
	actor text NOT NULL CHECK (actor IN ('api', 'sweeper', 'agent', 'cli')),
	action text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
	router_id uuid,
	server_id bigint,
	vpn_ip inet,
	request_id text CHECK (length(request_id) <= 64),
	detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
CREATE INDEX audit_log_router ON audit_log (router_id, at);
CREATE INDEX audit_log_ip ON audit_log (vpn_ip, at);
