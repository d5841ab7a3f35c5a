-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0004_api_v2: the API functions return reply bodies only (the coordinator picks the
-- HTTP status of a success); one answer for a public key in use, whoever holds it;
-- router actions audited under the router's tenant; placement on servers whose agent
-- reports; servers that can be changed and removed (soft delete); quota and rate
-- checks that cost the same at 5 or 5,000 routers; and a pinned search_path on every
-- function.
--
-- Every function of the schema runs with search_path = pg_catalog, <this schema>,
-- pg_temp, so that no object a caller put earlier on its search_path (a table or a
-- function with one of our names, or an operator) can stand in for ours. The DO block
-- at the end of this file pins every function that has no search_path of its own.
-- A later migration that creates or replaces a function must end with the same block
-- (CREATE OR REPLACE keeps a SET clause only when it is written in the statement).

-- ---- replies: bodies only ----

-- A replay returns the reply body stored by the first call, or NULL when this call is
-- the first and must do the work. The coordinator knows each route's success status,
-- so the status column is no longer written.
CREATE OR REPLACE FUNCTION wgf_idem_begin(c wgf_caller, p_key text, p_route text, p_hash bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	k idempotency_keys;
BEGIN
	IF p_key IS NULL THEN
		RETURN NULL;
	END IF;
	INSERT INTO idempotency_keys (api_key_id, key, route, request_hash)
	VALUES (c.key_id, p_key, p_route, p_hash) ON CONFLICT DO NOTHING;
	IF FOUND THEN
		RETURN NULL;
	END IF;
	SELECT * INTO k FROM idempotency_keys WHERE api_key_id = c.key_id AND key = p_key;
	IF k.route <> p_route OR k.request_hash <> p_hash OR k.response IS NULL THEN
		PERFORM wgf_raise('WG422', 'idempotency_key_reused',
			'This Idempotency-Key was used with a different request.');
	END IF;
	RETURN k.response;
END
$$;

DROP FUNCTION wgf_idem_end(wgf_caller, text, integer, jsonb);
-- Records the reply body of the first call with an Idempotency-Key; returns it.
CREATE FUNCTION wgf_idem_end(c wgf_caller, p_key text, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF p_key IS NOT NULL THEN
		UPDATE idempotency_keys SET response = p_body
		WHERE api_key_id = c.key_id AND key = p_key;
	END IF;
	RETURN p_body;
END
$$;

-- ---- servers: soft delete ----

-- A removed server keeps its row, so that leases, routers and the audit log still
-- name it; its name is free for a new server, and its agent key is cleared, so that
-- its agent is refused and the key can be registered again.
ALTER TABLE servers ADD COLUMN deleted_at timestamptz,
	ADD CONSTRAINT servers_deleted_no_agent CHECK (deleted_at IS NULL OR agent_key IS NULL),
	DROP CONSTRAINT servers_name_key;
CREATE UNIQUE INDEX servers_live_name ON servers (name) WHERE deleted_at IS NULL;

-- ---- tenants: O(1) quota and rate ----

-- live_routers counts the tenant's routers with released_at NULL. Every path that
-- creates or releases a router keeps it, in the transaction that does so, under the
-- tenant row's lock (reserve, wgf_release_address, wgf_sweep, wgf_api_delete_server).
--
-- The rate limit counts the tenant's reservations created in the last hour (deleted
-- ones too): at most N = reservations_per_hour. reservations numbers them: the k-th
-- reservation of a tenant is its router with tenant_seq = k. The k-th may be made
-- when the (k - N)-th is more than an hour old (or does not exist), because then
-- fewer than N of the ones before it fall within the hour. That is one index probe,
-- whatever N is and however many routers the tenant has, and a change of N needs no
-- rebuild. Numbers are handed out under the tenant row's lock, in the order the
-- reservations commit.
--
-- Lock order, so that these paths cannot deadlock: a router row, then its server's
-- row, then tenant rows (several in id order), then pool_addresses, then
-- server_usage. Reservations take the tenant first and never wait for a pool row
-- (SKIP LOCKED).
ALTER TABLE tenants ADD COLUMN live_routers integer NOT NULL DEFAULT 0 CHECK (live_routers >= 0),
	ADD COLUMN reservations bigint NOT NULL DEFAULT 0 CHECK (reservations >= 0);
-- NULL only for a router written by hand since; wgf_recount_tenants numbers it.
ALTER TABLE routers ADD COLUMN tenant_seq bigint;
CREATE UNIQUE INDEX routers_tenant_seq ON routers (tenant_id, tenant_seq);

-- server_usage shards by transaction id instead of backend pid. A coordinator keeps
-- its connections for hours, and two of its 16 whose pids are equal mod 16 queued on
-- one shard row for every reservation they made on the same server (0.8 ms a call in
-- the reservation benchmark). Transactions in flight at the same time have nearby ids,
-- so they rarely share a shard. Only a server's sum matters, so any shard will do.
CREATE OR REPLACE FUNCTION wgf_take_address(p_server bigint, p_router uuid, p_cooldown interval)
RETURNS inet LANGUAGE plpgsql AS $$
DECLARE
	v_ip inet;
BEGIN
	SELECT ip INTO v_ip FROM pool_addresses
	WHERE server_id = p_server AND router_id IS NULL AND free_since <= now() - p_cooldown
	ORDER BY free_since, ip LIMIT 1 FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	UPDATE pool_addresses SET router_id = p_router WHERE server_id = p_server AND ip = v_ip;
	UPDATE server_usage SET used = used + 1
	WHERE server_id = p_server AND shard = txid_current() % 16;
	RETURN v_ip;
END
$$;

-- Gives a router's address back and counts it out of its tenant's live routers. The
-- tenant comes before the pool and server_usage rows (the lock order above).
CREATE OR REPLACE FUNCTION wgf_release_address(r routers) RETURNS void LANGUAGE sql AS $$
	UPDATE tenants SET live_routers = live_routers - 1 WHERE id = r.tenant_id;
	UPDATE pool_addresses SET router_id = NULL, free_since = now() WHERE router_id = r.id;
	UPDATE server_usage SET used = used - 1
	WHERE server_id = r.server_id AND shard = txid_current() % 16;
$$;

CREATE OR REPLACE FUNCTION wgf_tenant_json(t tenants) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('slug', t.slug, 'name', t.name, 'router_quota', t.router_quota,
		'reservations_per_hour', t.reservations_per_hour, 'created_at', t.created_at,
		'routers', t.live_routers);
$$;

-- Recomputes every tenant's counters from the routers table, O(routers): this
-- migration's backfill, and a repair for routers rows written by hand (a benchmark's
-- pre-fill, say). Routers without a number get one after their tenant's numbered
-- ones, in creation order. Returns how many tenants' counters it changed.
CREATE FUNCTION wgf_recount_tenants() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v_fixed integer;
BEGIN
	PERFORM 1 FROM tenants ORDER BY id FOR UPDATE;
	UPDATE routers r SET tenant_seq = x.seq
	FROM (SELECT u.id, coalesce(m.top, 0)
			+ row_number() OVER (PARTITION BY u.tenant_id ORDER BY u.created_at, u.id) AS seq
		FROM routers u
		LEFT JOIN (SELECT tenant_id, max(tenant_seq) AS top FROM routers
			GROUP BY tenant_id) m ON m.tenant_id = u.tenant_id
		WHERE u.tenant_seq IS NULL) x
	WHERE r.id = x.id;
	UPDATE tenants tn SET live_routers = c.live, reservations = c.made
	FROM (SELECT tt.id, coalesce(g.live, 0) AS live, coalesce(g.made, 0) AS made
		FROM tenants tt LEFT JOIN (SELECT tenant_id,
				count(*) FILTER (WHERE released_at IS NULL) AS live,
				max(tenant_seq) AS made
			FROM routers GROUP BY tenant_id) g ON g.tenant_id = tt.id) c
	WHERE tn.id = c.id AND (tn.live_routers, tn.reservations) IS DISTINCT FROM (c.live, c.made);
	GET DIAGNOSTICS v_fixed = ROW_COUNT;
	RETURN v_fixed;
END
$$;

-- The counters of routers made before this migration.
SELECT wgf_recount_tenants();

-- ---- the router API ----

DROP FUNCTION wgf_api_reserve(text, bytea, text, text, interval, interval, text, text, bytea);
-- POST /v1/routers. p_online_within: when no server is named, only servers whose agent
-- reported within it are candidates (NULL: any server). A named server is used
-- whether or not its agent reports: the operator asked for it.
CREATE FUNCTION wgf_api_reserve(p_prefix text, p_hash bytea, p_name text, p_server text,
	p_ttl interval, p_cooldown interval, p_request_id text, p_idem_key text,
	p_request_hash bytea, p_online_within interval DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	t tenants;
	s servers;
	r routers;
	v_id uuid := gen_random_uuid();
	v_ip inet;
	v_at timestamptz;
	v_limited boolean;
	v_prev jsonb;
BEGIN
	IF p_idem_key IS NOT NULL THEN
		v_prev := wgf_idem_begin(c, p_idem_key, 'reserve', p_request_hash);
		IF v_prev IS NOT NULL THEN
			RETURN v_prev;
		END IF;
	END IF;
	IF c.tenant_id IS NULL THEN
		PERFORM wgf_raise('WG403', 'forbidden', 'Routers belong to tenants: use a tenant key.');
	END IF;
	-- Counting this reservation in also locks the tenant row, which makes quota and
	-- rate exact under concurrency. A refusal below raises, and the raise undoes the
	-- counting with everything else.
	UPDATE tenants SET live_routers = live_routers + 1, reservations = reservations + 1
	WHERE id = c.tenant_id RETURNING * INTO t;
	IF t.live_routers > t.router_quota THEN
		PERFORM wgf_raise('WG403', 'quota_exceeded',
			format('The tenant has %s routers, its quota.', t.router_quota));
	END IF;
	IF t.reservations_per_hour > 0 THEN
		SELECT created_at INTO v_at FROM routers
		WHERE tenant_id = t.id AND tenant_seq = t.reservations - t.reservations_per_hour;
		v_limited := v_at > now() - interval '1 hour';
	ELSE
		-- No reservation is allowed; Retry-After as before 0004 (an index probe).
		SELECT min(created_at) INTO v_at FROM routers
		WHERE tenant_id = t.id AND created_at > now() - interval '1 hour';
		v_limited := true;
	END IF;
	-- Retry-After counts from clock_timestamp(): now() is when this transaction began,
	-- which can be before the reservations it waited for on the tenant lock.
	IF v_limited THEN
		PERFORM wgf_raise('WG429', 'rate_limited',
			format('At most %s reservations an hour.', t.reservations_per_hour),
			greatest(1, ceil(extract(epoch FROM
				v_at + interval '1 hour' - clock_timestamp())))::text);
	END IF;
	IF p_server IS NOT NULL THEN
		SELECT * INTO s FROM servers WHERE name = p_server AND deleted_at IS NULL;
		IF NOT FOUND THEN
			PERFORM wgf_raise('WG404', 'server_not_found',
				format('No server is named ''%s''.', p_server));
		END IF;
		v_ip := wgf_take_address(s.id, v_id, p_cooldown);
	ELSE
		-- The least-used server that still has an address.
		FOR s IN
			SELECT sv.* FROM servers sv
			LEFT JOIN (SELECT server_id, sum(used) AS used FROM server_usage
				GROUP BY server_id) u ON u.server_id = sv.id
			WHERE sv.deleted_at IS NULL
			  AND (p_online_within IS NULL OR sv.last_seen_at >= now() - p_online_within)
			ORDER BY coalesce(u.used, 0), sv.id
		LOOP
			v_ip := wgf_take_address(s.id, v_id, p_cooldown);
			EXIT WHEN v_ip IS NOT NULL;
		END LOOP;
		IF s.id IS NULL AND p_online_within IS NOT NULL
		   AND EXISTS (SELECT 1 FROM servers WHERE deleted_at IS NULL) THEN
			PERFORM wgf_raise('WG409', 'no_server_ready', format(
				'No server''s agent has reported in the last %s seconds; name a server or start its agent.',
				trim_scale(extract(epoch FROM p_online_within))));
		END IF;
	END IF;
	IF v_ip IS NULL THEN
		PERFORM wgf_raise('WG409', 'pool_exhausted', CASE WHEN s.id IS NULL
			THEN 'No server is registered yet.'
			ELSE 'No free address is left in the pool.' END);
	END IF;
	INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, reservation_expires_at,
		tenant_seq)
	VALUES (v_id, t.id, s.id, p_name, v_ip, now() + p_ttl, t.reservations) RETURNING * INTO r;
	-- wgf_audit's INSERT, written out: one nested call less on the hottest path.
	INSERT INTO audit_log (tenant_id, api_key_id, actor, action, router_id, server_id,
		vpn_ip, request_id, detail)
	VALUES (t.id, c.key_id, 'api', 'router.reserved', r.id, s.id, v_ip, p_request_id,
		jsonb_build_object('name', p_name, 'expires_at', r.reservation_expires_at));
	IF p_idem_key IS NOT NULL THEN
		RETURN wgf_idem_end(c, p_idem_key, wgf_router_json(r));
	END IF;
	RETURN wgf_router_json(r);
END
$$;

-- PUT /v1/routers/{id}/public-key. A key in use gets one answer whoever holds it (the
-- caller's other router or another tenant's), so that the answer tells nothing about
-- other tenants; the key stays unique across all of them.
CREATE OR REPLACE FUNCTION wgf_api_set_public_key(p_prefix text, p_hash bytea, p_id uuid,
	p_key bytea, p_keepalive integer, p_request_id text, p_idem_key text, p_request_hash bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_prev jsonb := wgf_idem_begin(c, p_idem_key, 'public-key:' || p_id, p_request_hash);
	r routers;
	v_old bytea;
	v_rev bigint;
	v_in_use constant text :=
		'This public key is already registered; generate a new key pair on the router.';
BEGIN
	IF v_prev IS NOT NULL THEN
		RETURN v_prev;
	END IF;
	r := wgf_router_for_update(c, p_id);
	IF r.status = 'expired' OR (r.status = 'pending' AND r.reservation_expires_at <= now()) THEN
		PERFORM wgf_raise('WG409', 'reservation_expired',
			'The reservation expired and its address was released; reserve again.');
	END IF;
	IF r.public_key = p_key THEN
		RETURN wgf_idem_end(c, p_idem_key, wgf_router_json(r));
	END IF;
	IF EXISTS (SELECT 1 FROM routers WHERE public_key = p_key AND released_at IS NULL) THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', v_in_use);
	END IF;
	v_old := r.public_key;
	IF v_old IS NOT NULL THEN
		PERFORM wgf_append_change(r.server_id, 'remove', r.id, v_old, r.vpn_ip, 0);
	END IF;
	v_rev := wgf_append_change(r.server_id, 'upsert', r.id, p_key, r.vpn_ip, p_keepalive);
	-- A router that took the key after the check above (committed while this one
	-- waited on the unique index) gets the same answer.
	BEGIN
		UPDATE routers SET public_key = p_key, status = 'configured', status_reason = NULL,
			configured_at = now(), key_revision = v_rev
		WHERE id = r.id RETURNING * INTO r;
	EXCEPTION WHEN unique_violation THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', v_in_use);
	END;
	PERFORM wgf_audit(c, 'api', CASE WHEN v_old IS NULL THEN 'router.key_set'
		ELSE 'router.key_rotated' END, r.id, r.server_id, r.vpn_ip, p_request_id,
		jsonb_build_object('public_key', encode(p_key, 'base64'), 'revision', v_rev,
			'old_public_key', encode(v_old, 'base64')), r.tenant_id);
	RETURN wgf_idem_end(c, p_idem_key, wgf_router_json(r));
END
$$;

-- DELETE /v1/routers/{id}. Audited under the router's tenant, also when an admin key
-- deletes it, so that the tenant's own audit log shows it.
CREATE OR REPLACE FUNCTION wgf_api_delete_router(p_prefix text, p_hash bytea, p_id uuid,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	r routers := wgf_router_for_update(c, p_id);
	v_rev bigint;
BEGIN
	IF r.public_key IS NOT NULL AND r.released_at IS NULL THEN
		v_rev := wgf_append_change(r.server_id, 'remove', r.id, r.public_key, r.vpn_ip, 0);
	END IF;
	IF r.released_at IS NULL THEN
		PERFORM wgf_release_address(r);
	END IF;
	UPDATE routers SET status = 'deleted', released_at = coalesce(released_at, now())
	WHERE id = r.id;
	PERFORM wgf_audit(c, 'api', 'router.deleted', r.id, r.server_id, r.vpn_ip, p_request_id,
		jsonb_build_object('revision', v_rev), r.tenant_id);
	RETURN '{}'::jsonb;
END
$$;

CREATE OR REPLACE FUNCTION wgf_api_revoke_key(p_prefix text, p_hash bytea, p_id bigint,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	k api_keys;
BEGIN
	UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = p_id RETURNING * INTO k;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'key_not_found', 'No such key.');
	END IF;
	PERFORM wgf_audit(c, 'api', 'key.revoked', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('key_id', p_id), k.tenant_id);
	RETURN '{}'::jsonb;
END
$$;

-- The sweeper, set-based: the batch's routers first (SKIP LOCKED), then their tenants
-- in id order, then pool and usage rows, the lock order every path follows.
CREATE OR REPLACE FUNCTION wgf_sweep(p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v_ids uuid[];
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265074) THEN
		RETURN 0;
	END IF;
	SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM (
		SELECT id FROM routers WHERE status = 'pending' AND reservation_expires_at <= now()
		ORDER BY reservation_expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED) x;
	IF cardinality(v_ids) > 0 THEN
		PERFORM 1 FROM tenants WHERE id IN (SELECT tenant_id FROM routers WHERE id = ANY (v_ids))
		ORDER BY id FOR UPDATE;
		UPDATE tenants t SET live_routers = t.live_routers - g.n
		FROM (SELECT tenant_id, count(*) AS n FROM routers WHERE id = ANY (v_ids)
			GROUP BY tenant_id) g
		WHERE t.id = g.tenant_id;
		UPDATE pool_addresses SET router_id = NULL, free_since = now()
		WHERE router_id = ANY (v_ids);
		UPDATE server_usage u SET used = u.used - g.n
		FROM (SELECT server_id, count(*) AS n FROM routers WHERE id = ANY (v_ids)
			GROUP BY server_id) g
		WHERE u.server_id = g.server_id AND u.shard = txid_current() % 16;
		WITH x AS (
			UPDATE routers SET status = 'expired', released_at = now(),
				status_reason = 'reservation expired before a public key was submitted'
			WHERE id = ANY (v_ids)
			RETURNING id, tenant_id, server_id, vpn_ip, reservation_expires_at)
		INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
		SELECT tenant_id, 'sweeper', 'router.expired', id, server_id, vpn_ip,
			jsonb_build_object('expired_at', reservation_expires_at)
		FROM x ORDER BY reservation_expires_at;
	END IF;
	DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
	RETURN cardinality(v_ids);
END
$$;

-- ---- the server API ----

CREATE OR REPLACE FUNCTION wgf_api_list_servers(p_prefix text, p_hash bytea)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(wgf_server_json(s) ORDER BY s.name), '[]')
		FROM servers s WHERE s.deleted_at IS NULL));
END
$$;

-- PATCH /v1/servers/{name}: NULL leaves a field as it is. Pool and gateway stay: the
-- free list and every router's address derive from them.
CREATE FUNCTION wgf_api_update_server(p_prefix text, p_hash bytea, p_name text,
	p_endpoint text, p_interface text, p_agent_key bytea, p_public_key bytea,
	p_listen_port integer, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	o servers;
	s servers;
BEGIN
	SELECT * INTO o FROM servers WHERE name = p_name AND deleted_at IS NULL FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	BEGIN
		UPDATE servers SET endpoint = coalesce(p_endpoint, endpoint),
			interface = coalesce(p_interface, interface),
			agent_key = coalesce(p_agent_key, agent_key),
			wg_public_key = coalesce(p_public_key, wg_public_key),
			wg_listen_port = coalesce(p_listen_port, wg_listen_port)
		WHERE id = o.id RETURNING * INTO s;
	EXCEPTION
		WHEN unique_violation THEN
			PERFORM wgf_raise('WG409', 'server_exists', 'Another server has this agent key.');
		WHEN check_violation THEN
			PERFORM wgf_raise('WG400', 'invalid_request', 'endpoint: 3-261 characters; interface: at most 15 characters.');
	END;
	PERFORM wgf_audit(c, 'api', 'server.updated', NULL, s.id, NULL, p_request_id,
		jsonb_strip_nulls(jsonb_build_object(
			'endpoint', nullif(s.endpoint, o.endpoint),
			'interface', nullif(s.interface, o.interface),
			'agent_key', encode(nullif(s.agent_key, o.agent_key), 'base64'),
			'public_key', encode(nullif(s.wg_public_key, o.wg_public_key), 'base64'),
			'listen_port', nullif(s.wg_listen_port, o.wg_listen_port))));
	RETURN wgf_server_json(s);
END
$$;

-- DELETE /v1/servers/{name}. Refused while the server has live routers, unless
-- p_force: then each is deleted (its tenant's audit log says why). No 'remove' change
-- is written for them, since the server's peer set goes with the server.
--
-- Locks: the server row first, FOR NO KEY UPDATE, which stops agent messages and
-- change appends for it but not reservations (their router insert takes KEY SHARE).
-- Then its live routers, then its pool rows: deleting them waits for reservations
-- that hold one and keeps new ones away, so a second look at the routers sees every
-- router the server will ever have. Then tenants in id order.
CREATE FUNCTION wgf_api_delete_server(p_prefix text, p_hash bytea, p_name text,
	p_force boolean, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	s servers;
	v_live integer;
	v_n integer := 0;
BEGIN
	SELECT * INTO s FROM servers WHERE name = p_name AND deleted_at IS NULL FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	FOR pass IN 1..2 LOOP
		SELECT count(*) INTO v_live FROM (SELECT 1 FROM routers
			WHERE server_id = s.id AND released_at IS NULL ORDER BY id FOR UPDATE) x;
		IF v_live > 0 AND p_force IS NOT TRUE THEN
			PERFORM wgf_raise('WG409', 'server_has_routers', format(
				'Server ''%s'' has %s live router%s; delete them first, or remove it with force to release them.',
				s.name, v_live, CASE WHEN v_live = 1 THEN '' ELSE 's' END));
		END IF;
		IF pass = 1 THEN
			DELETE FROM pool_addresses WHERE server_id = s.id;
		END IF;
	END LOOP;
	IF v_live > 0 THEN
		PERFORM 1 FROM tenants WHERE id IN (SELECT tenant_id FROM routers
			WHERE server_id = s.id AND released_at IS NULL) ORDER BY id FOR UPDATE;
		WITH gone AS (
			UPDATE routers SET status = 'deleted', released_at = now()
			WHERE server_id = s.id AND released_at IS NULL
			RETURNING id, tenant_id, vpn_ip),
		counted AS (
			UPDATE tenants t SET live_routers = t.live_routers - g.n
			FROM (SELECT tenant_id, count(*) AS n FROM gone GROUP BY tenant_id) g
			WHERE t.id = g.tenant_id)
		INSERT INTO audit_log (tenant_id, api_key_id, actor, action, router_id, server_id,
			vpn_ip, request_id, detail)
		SELECT tenant_id, c.key_id, 'api', 'router.deleted', id, s.id, vpn_ip, p_request_id,
			'{"reason": "server removed"}'
		FROM gone ORDER BY vpn_ip;
		GET DIAGNOSTICS v_n = ROW_COUNT;
	END IF;
	DELETE FROM server_usage WHERE server_id = s.id;
	UPDATE servers SET deleted_at = now(), agent_key = NULL WHERE id = s.id;
	PERFORM wgf_audit(c, 'api', 'server.deleted', NULL, s.id, NULL, p_request_id,
		jsonb_build_object('released_routers', v_n));
	RETURN jsonb_build_object('name', s.name, 'released_routers', v_n);
END
$$;

-- ---- readers that must not see removed servers ----

-- A removed server's agent_key is NULL, so its agent is refused here already; the
-- condition on deleted_at says so in the query, not only in the data.
CREATE OR REPLACE FUNCTION wgf_agent_begin(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers;
BEGIN
	UPDATE servers SET last_seen_at = now()
	WHERE agent_key = p_agent_key AND deleted_at IS NULL RETURNING * INTO s;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG401', 'unknown_sender', 'No server is registered with this agent key.');
	END IF;
	INSERT INTO agent_nonces (server_id, nonce) VALUES (s.id, p_nonce) ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG409', 'replay', 'This message was seen before.');
	END IF;
	IF random() < 0.01 THEN
		DELETE FROM agent_nonces WHERE seen_at < now() - interval '10 minutes';
	END IF;
	RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION wgf_api_status(p_prefix text, p_hash bytea, p_online_within interval)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	RETURN jsonb_build_object(
		'servers', (SELECT coalesce(jsonb_agg(jsonb_build_object(
			'name', s.name,
			'online', s.last_seen_at IS NOT NULL AND s.last_seen_at > now() - p_online_within,
			'last_seen_at', s.last_seen_at,
			'revision', s.revision, 'applied_revision', s.applied_revision,
			'revision_lag', s.revision - s.applied_revision,
			'peers', (SELECT count(*) FROM routers r WHERE r.server_id = s.id
				AND r.released_at IS NULL AND r.public_key IS NOT NULL),
			'connected', (SELECT count(*) FROM routers r WHERE r.server_id = s.id
				AND r.status = 'connected'),
			'drift_repairs', s.drift_repairs,
			'apply_latency', wgf_apply_latency(s.id),
			'pool', jsonb_build_object('cidr', s.pool::text,
				'size', (SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id),
				'used', (SELECT coalesce(sum(used), 0) FROM server_usage u WHERE u.server_id = s.id)))
			ORDER BY s.name), '[]') FROM servers s WHERE s.deleted_at IS NULL),
		'routers', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
			(SELECT status, count(*) AS n FROM routers WHERE status <> 'deleted' GROUP BY status) x));
END
$$;

-- ---- search_path ----

-- Pins every function and procedure of this schema that has no search_path of its
-- own (see the top of this file). Functions of extensions are theirs to manage. Every
-- later step that creates or replaces functions ends with the same CALL.
CREATE PROCEDURE wgf_pin_search_paths(p_schema text) LANGUAGE plpgsql AS $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = p_schema AND p.prokind IN ('f', 'p')
		  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) g WHERE g LIKE 'search_path=%')
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
			AND d.objid = p.oid AND d.deptype = 'e')
	LOOP
		EXECUTE format('ALTER ROUTINE %s SET search_path = pg_catalog, %I, pg_temp',
			f, p_schema);
	END LOOP;
END
$$;
-- The schema comes from the caller: once pinned, the procedure's own current_schema()
-- would be pg_catalog.
CALL wgf_pin_search_paths(current_schema());
