-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0002_api: the portal and admin API as SQL functions. Each API call is one function
-- call: one transaction, one round trip (DESIGN.md principle 2). A function
-- authenticates the caller from the API key's prefix and keyed hash, does the work,
-- writes its audit row, and returns the reply body as jsonb.
--
-- Errors a client should see are raised with SQLSTATE 'WG' followed by the HTTP status
-- (WG404, WG409, ...), the error code as the message ('quota_exceeded') and a sentence
-- for people as the detail; a 429 carries its Retry-After seconds as the hint. The
-- coordinator turns them into {"error":{"code":..., "message":...}} unchanged.

CREATE FUNCTION wgf_raise(p_state text, p_code text, p_detail text, p_hint text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = p_code, DETAIL = p_detail,
		HINT = coalesce(p_hint, '');
END
$$;

-- Live routers per tenant, for the quota.
CREATE INDEX routers_tenant_live ON routers (tenant_id) WHERE released_at IS NULL;
-- The free list in allocation order.
DROP INDEX pool_addresses_free;
CREATE INDEX pool_addresses_free ON pool_addresses (server_id, free_since, ip)
	WHERE router_id IS NULL;
-- Every allocation leaves a dead entry at the front of the free-list index until VACUUM,
-- and the default (20% of the table changed) lets thousands pile up in a big pool:
-- vacuum this table after a fixed number of changes instead (docs/BENCHMARKS.md).
ALTER TABLE pool_addresses SET (autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_insert_scale_factor = 0,
	autovacuum_vacuum_insert_threshold = 2000);

-- How many addresses each server has handed out, in shards so that concurrent
-- reservations on one server do not queue on one counter row: each database session
-- updates the shard of its backend pid.
CREATE TABLE server_usage (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	shard smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
	used integer NOT NULL DEFAULT 0,
	PRIMARY KEY (server_id, shard)
);

CREATE TABLE idempotency_keys (
	api_key_id bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
	key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
	route text NOT NULL,
	request_hash bytea NOT NULL,
	status integer,
	response jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

CREATE TYPE wgf_caller AS (key_id bigint, tenant_id bigint, scope text);

-- The caller behind a key, or 401. p_admin: the route needs admin scope (403 if not).
CREATE FUNCTION wgf_auth(p_prefix text, p_hash bytea, p_admin boolean)
RETURNS wgf_caller LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller;
BEGIN
	SELECT id, tenant_id, scope INTO c FROM api_keys
	WHERE prefix = p_prefix AND hash = p_hash AND revoked_at IS NULL;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG401', 'unauthorized', 'The API key is missing, wrong or revoked.');
	END IF;
	IF p_admin AND c.scope <> 'admin' THEN
		PERFORM wgf_raise('WG403', 'forbidden', 'This route needs an admin key.');
	END IF;
	RETURN c;
END
$$;

-- plpgsql rather than sql: a plpgsql function keeps its plans, a sql one that cannot be
-- inlined is planned on every call (1.35x throughput measured; docs/BENCHMARKS.md).
CREATE FUNCTION wgf_audit(c wgf_caller, p_actor text, p_action text, p_router uuid,
	p_server bigint, p_ip inet, p_request_id text, p_detail jsonb, p_tenant bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_log (tenant_id, api_key_id, actor, action, router_id, server_id,
		vpn_ip, request_id, detail)
	VALUES (coalesce(p_tenant, c.tenant_id), c.key_id, p_actor, p_action, p_router,
		p_server, p_ip, p_request_id, coalesce(p_detail, '{}'));
END
$$;

-- A router as the API shows it. The server's facts ride along under "_server" for
-- the coordinator, which writes the setup text from them and removes the key.
CREATE FUNCTION wgf_router_json(r routers) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT jsonb_build_object(
		'id', r.id,
		'name', r.name,
		'server', s.name,
		'vpn_ip', host(r.vpn_ip),
		'vpn_status', r.status,
		'status_reason', r.status_reason,
		'public_key', encode(r.public_key, 'base64'),
		'created_at', r.created_at,
		'reservation_expires_at', CASE WHEN r.status = 'pending'
			THEN r.reservation_expires_at END,
		'configured_at', r.configured_at,
		'released_at', r.released_at,
		'last_handshake_at', r.last_handshake_at,
		'endpoint', r.endpoint,
		'rx_bytes', r.rx_bytes,
		'tx_bytes', r.tx_bytes,
		'_server', jsonb_build_object(
			'endpoint', s.endpoint,
			'public_key', encode(s.wg_public_key, 'base64'),
			'listen_port', s.wg_listen_port,
			'pool', s.pool::text,
			'gateway', host(s.gateway)))
	FROM servers s WHERE s.id = r.server_id);
END
$$;

-- Idempotency: the first call with a key records its reply; a retry with the same key
-- and the same request gets it back; the same key with another request is a 422.
-- Returns the stored reply, or NULL when this call is the first and must do the work.
CREATE FUNCTION wgf_idem_begin(c wgf_caller, p_key text, p_route text, p_hash bytea)
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
	RETURN jsonb_build_object('status', k.status, 'body', k.response, 'replayed', true);
END
$$;

CREATE FUNCTION wgf_idem_end(c wgf_caller, p_key text, p_status integer, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF p_key IS NOT NULL THEN
		UPDATE idempotency_keys SET status = p_status, response = p_body
		WHERE api_key_id = c.key_id AND key = p_key;
	END IF;
	RETURN jsonb_build_object('status', p_status, 'body', p_body);
END
$$;

-- Takes the free address that has been free longest (never one released less than
-- p_cooldown ago) from server s; NULL when there is none.
CREATE FUNCTION wgf_take_address(p_server bigint, p_router uuid, p_cooldown interval)
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
	WHERE server_id = p_server AND shard = pg_backend_pid() % 16;
	RETURN v_ip;
END
$$;

CREATE FUNCTION wgf_release_address(r routers) RETURNS void LANGUAGE sql AS $$
	UPDATE pool_addresses SET router_id = NULL, free_since = now() WHERE router_id = r.id;
	UPDATE server_usage SET used = used - 1
	WHERE server_id = r.server_id AND shard = pg_backend_pid() % 16;
$$;

-- Appends a change for a server's agent and returns its revision. The UPDATE of the
-- server row serialises changes per server, so revisions are gap-free and ordered.
CREATE FUNCTION wgf_append_change(p_server bigint, p_op text, p_router uuid, p_key bytea,
	p_ip inet, p_keepalive integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_rev bigint;
BEGIN
	UPDATE servers SET revision = revision + 1 WHERE id = p_server RETURNING revision INTO v_rev;
	INSERT INTO changes (server_id, revision, op, router_id, public_key, allowed_ips,
		persistent_keepalive)
	VALUES (p_server, v_rev, p_op, p_router, p_key, ARRAY[set_masklen(p_ip,
		CASE WHEN family(p_ip) = 4 THEN 32 ELSE 128 END)::cidr], p_keepalive);
	PERFORM pg_notify('wgf_changes', p_server || ':' || v_rev);
	RETURN v_rev;
END
$$;

-- POST /v1/routers
CREATE FUNCTION wgf_api_reserve(p_prefix text, p_hash bytea, p_name text, p_server text,
	p_ttl interval, p_cooldown interval, p_request_id text, p_idem_key text,
	p_request_hash bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	t tenants;
	s servers;
	r routers;
	v_id uuid := gen_random_uuid();
	v_ip inet;
	v_live integer;
	v_recent integer;
	v_oldest timestamptz;
	v_prev jsonb := wgf_idem_begin(c, p_idem_key, 'reserve', p_request_hash);
BEGIN
	IF v_prev IS NOT NULL THEN
		RETURN v_prev;
	END IF;
	IF c.tenant_id IS NULL THEN
		PERFORM wgf_raise('WG403', 'forbidden', 'Routers belong to tenants: use a tenant key.');
	END IF;
	-- The tenant row lock makes quota and rate exact under concurrency.
	SELECT * INTO t FROM tenants WHERE id = c.tenant_id FOR UPDATE;
	SELECT count(*) INTO v_live FROM routers
	WHERE tenant_id = t.id AND released_at IS NULL;
	IF v_live >= t.router_quota THEN
		PERFORM wgf_raise('WG403', 'quota_exceeded',
			format('The tenant has %s routers, its quota.', t.router_quota));
	END IF;
	SELECT count(*), min(created_at) INTO v_recent, v_oldest FROM routers
	WHERE tenant_id = t.id AND created_at > now() - interval '1 hour';
	-- Retry-After counts from clock_timestamp(): now() is when this transaction began,
	-- which can be before the reservations it waited for on the tenant lock.
	IF v_recent >= t.reservations_per_hour THEN
		PERFORM wgf_raise('WG429', 'rate_limited',
			format('At most %s reservations an hour.', t.reservations_per_hour),
			greatest(1, ceil(extract(epoch FROM
				v_oldest + interval '1 hour' - clock_timestamp())))::text);
	END IF;
	IF p_server IS NOT NULL THEN
		SELECT * INTO s FROM servers WHERE name = p_server;
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
			ORDER BY coalesce(u.used, 0), sv.id
		LOOP
			v_ip := wgf_take_address(s.id, v_id, p_cooldown);
			EXIT WHEN v_ip IS NOT NULL;
		END LOOP;
	END IF;
	IF v_ip IS NULL THEN
		PERFORM wgf_raise('WG409', 'pool_exhausted', CASE WHEN s.id IS NULL
			THEN 'No server is registered yet.'
			ELSE 'No free address is left in the pool.' END);
	END IF;
	INSERT INTO routers (id, tenant_id, server_id, name, vpn_ip, reservation_expires_at)
	VALUES (v_id, t.id, s.id, p_name, v_ip, now() + p_ttl) RETURNING * INTO r;
	PERFORM wgf_audit(c, 'api', 'router.reserved', r.id, s.id, v_ip, p_request_id,
		jsonb_build_object('name', p_name, 'expires_at', r.reservation_expires_at));
	RETURN wgf_idem_end(c, p_idem_key, 201, wgf_router_json(r));
END
$$;

-- A tenant's live or released router, locked, or 404 (another tenant's too: never 403).
CREATE FUNCTION wgf_router_for_update(c wgf_caller, p_id uuid) RETURNS routers
LANGUAGE plpgsql AS $$
DECLARE
	r routers;
BEGIN
	SELECT * INTO r FROM routers
	WHERE id = p_id AND (tenant_id = c.tenant_id OR c.scope = 'admin') FOR UPDATE;
	IF NOT FOUND OR r.status = 'deleted' THEN
		PERFORM wgf_raise('WG404', 'router_not_found', 'No such router.');
	END IF;
	RETURN r;
END
$$;

-- PUT /v1/routers/{id}/public-key
CREATE FUNCTION wgf_api_set_public_key(p_prefix text, p_hash bytea, p_id uuid, p_key bytea,
	p_keepalive integer, p_request_id text, p_idem_key text, p_request_hash bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_prev jsonb := wgf_idem_begin(c, p_idem_key, 'public-key:' || p_id, p_request_hash);
	r routers;
	v_old bytea;
	v_rev bigint;
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
		RETURN wgf_idem_end(c, p_idem_key, 200, wgf_router_json(r));
	END IF;
	IF EXISTS (SELECT 1 FROM routers WHERE public_key = p_key AND released_at IS NULL) THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', 'Another router already uses this key.');
	END IF;
	v_old := r.public_key;
	IF v_old IS NOT NULL THEN
		PERFORM wgf_append_change(r.server_id, 'remove', r.id, v_old, r.vpn_ip, 0);
	END IF;
	v_rev := wgf_append_change(r.server_id, 'upsert', r.id, p_key, r.vpn_ip, p_keepalive);
	BEGIN
		UPDATE routers SET public_key = p_key, status = 'configured', status_reason = NULL,
			configured_at = now(), key_revision = v_rev
		WHERE id = r.id RETURNING * INTO r;
	EXCEPTION WHEN unique_violation THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', 'Another router already uses this key.');
	END;
	PERFORM wgf_audit(c, 'api', CASE WHEN v_old IS NULL THEN 'router.key_set'
		ELSE 'router.key_rotated' END, r.id, r.server_id, r.vpn_ip, p_request_id,
		jsonb_build_object('public_key', encode(p_key, 'base64'), 'revision', v_rev,
			'old_public_key', encode(v_old, 'base64')));
	RETURN wgf_idem_end(c, p_idem_key, 200, wgf_router_json(r));
END
$$;

-- An expired router stays listed, status expired, until its tenant deletes it.
INSERT INTO router_transitions (from_status, to_status) VALUES ('expired', 'deleted');

-- DELETE /v1/routers/{id}
CREATE FUNCTION wgf_api_delete_router(p_prefix text, p_hash bytea, p_id uuid,
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
		jsonb_build_object('revision', v_rev));
	RETURN jsonb_build_object('status', 204);
END
$$;

-- GET /v1/routers/{id}
CREATE FUNCTION wgf_api_get_router(p_prefix text, p_hash bytea, p_id uuid)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	r routers;
BEGIN
	SELECT * INTO r FROM routers
	WHERE id = p_id AND (tenant_id = c.tenant_id OR c.scope = 'admin') AND status <> 'deleted';
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'router_not_found', 'No such router.');
	END IF;
	RETURN wgf_router_json(r);
END
$$;

-- GET /v1/routers: keyset pagination on (created_at, id); the cursor is opaque.
CREATE FUNCTION wgf_api_list_routers(p_prefix text, p_hash bytea, p_status text,
	p_server text, p_limit integer, p_cursor text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_after_at timestamptz;
	v_after_id uuid;
	v_items jsonb;
	v_n integer;
	v_last routers;
BEGIN
	IF p_status IS NOT NULL AND NOT p_status = ANY (enum_range(NULL::router_status)::text[]) THEN
		PERFORM wgf_raise('WG400', 'invalid_request', format('status: ''%s'' is not a router status.', p_status));
	END IF;
	IF p_cursor IS NOT NULL THEN
		BEGIN
			v_after_at := split_part(convert_from(decode(p_cursor, 'base64'), 'UTF8'), ',', 1)::timestamptz;
			v_after_id := split_part(convert_from(decode(p_cursor, 'base64'), 'UTF8'), ',', 2)::uuid;
		EXCEPTION WHEN OTHERS THEN
			PERFORM wgf_raise('WG400', 'invalid_request', 'cursor: not a cursor this API gave out.');
		END;
	END IF;
	WITH page AS (
		SELECT r.* FROM routers r
		LEFT JOIN servers s ON s.id = r.server_id
		WHERE (r.tenant_id = c.tenant_id OR c.scope = 'admin')
		  AND r.status <> 'deleted'
		  AND (p_status IS NULL OR r.status = p_status::router_status)
		  AND (p_server IS NULL OR s.name = p_server)
		  AND (p_cursor IS NULL OR (r.created_at, r.id) > (v_after_at, v_after_id))
		ORDER BY r.created_at, r.id
		LIMIT p_limit
	)
	SELECT coalesce(jsonb_agg(wgf_router_json(page) - '_server' ORDER BY created_at, id), '[]'),
		count(*)
	INTO v_items, v_n FROM page;
	IF v_n = p_limit THEN
		SELECT * INTO v_last FROM routers WHERE id = (v_items -> (v_n - 1) ->> 'id')::uuid;
		RETURN jsonb_build_object('items', v_items, 'next_cursor',
			translate(encode(convert_to(v_last.created_at::text || ',' || v_last.id, 'UTF8'),
				'base64'), E'\n', ''));
	END IF;
	RETURN jsonb_build_object('items', v_items, 'next_cursor', NULL);
END
$$;

-- GET /v1/audit: a tenant's own entries, or everyone's for an admin key.
CREATE FUNCTION wgf_api_audit(p_prefix text, p_hash bytea, p_router uuid, p_since timestamptz,
	p_limit integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
BEGIN
	RETURN (SELECT jsonb_build_object('items', coalesce(jsonb_agg(jsonb_build_object(
			'id', a.id, 'at', a.at, 'tenant', t.slug, 'api_key_id', a.api_key_id,
			'actor', a.actor, 'action', a.action, 'router_id', a.router_id,
			'vpn_ip', host(a.vpn_ip), 'request_id', a.request_id, 'detail', a.detail)
			ORDER BY a.id), '[]'))
		FROM (SELECT * FROM audit_log
			WHERE (tenant_id = c.tenant_id OR c.scope = 'admin')
			  AND (p_router IS NULL OR router_id = p_router)
			  AND (p_since IS NULL OR at >= p_since)
			ORDER BY id LIMIT p_limit) a
		LEFT JOIN tenants t ON t.id = a.tenant_id);
END
$$;

-- GET /v1/leases?ip=&at=: who held an address at a moment.
CREATE FUNCTION wgf_api_leases(p_prefix text, p_hash bytea, p_ip inet, p_at timestamptz)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
BEGIN
	RETURN (SELECT jsonb_build_object('items', coalesce(jsonb_agg(jsonb_build_object(
			'tenant', t.slug, 'router_id', r.id, 'router_name', r.name,
			'server', s.name, 'vpn_ip', host(r.vpn_ip), 'public_key',
			encode(r.public_key, 'base64'), 'from', r.created_at, 'until', r.released_at)
			ORDER BY r.created_at), '[]'))
		FROM routers r JOIN tenants t ON t.id = r.tenant_id JOIN servers s ON s.id = r.server_id
		WHERE r.vpn_ip = p_ip AND (r.tenant_id = c.tenant_id OR c.scope = 'admin')
		  AND (p_at IS NULL OR (r.created_at <= p_at AND (r.released_at IS NULL OR r.released_at > p_at))));
END
$$;

-- Admin: tenants.
CREATE FUNCTION wgf_tenant_json(t tenants) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('slug', t.slug, 'name', t.name, 'router_quota', t.router_quota,
		'reservations_per_hour', t.reservations_per_hour, 'created_at', t.created_at,
		'routers', (SELECT count(*) FROM routers WHERE tenant_id = t.id AND released_at IS NULL));
$$;

CREATE FUNCTION wgf_api_create_tenant(p_prefix text, p_hash bytea, p_slug text, p_name text,
	p_quota integer, p_rate integer, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	t tenants;
BEGIN
	BEGIN
		INSERT INTO tenants (slug, name, router_quota, reservations_per_hour)
		VALUES (p_slug, p_name, coalesce(p_quota, 100), coalesce(p_rate, 5)) RETURNING * INTO t;
	EXCEPTION
		WHEN unique_violation THEN
			PERFORM wgf_raise('WG409', 'tenant_exists', format('A tenant ''%s'' exists.', p_slug));
		WHEN check_violation THEN
			PERFORM wgf_raise('WG400', 'invalid_request',
				'slug: lower-case letters, digits and dashes, 1-63 characters, starting with a letter or digit.');
	END;
	PERFORM wgf_audit(c, 'api', 'tenant.created', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('slug', p_slug), t.id);
	RETURN wgf_tenant_json(t);
END
$$;

CREATE FUNCTION wgf_api_list_tenants(p_prefix text, p_hash bytea)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(wgf_tenant_json(t) ORDER BY t.slug), '[]')
		FROM tenants t));
END
$$;

CREATE FUNCTION wgf_api_update_tenant(p_prefix text, p_hash bytea, p_slug text,
	p_quota integer, p_rate integer, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	t tenants;
BEGIN
	UPDATE tenants SET router_quota = coalesce(p_quota, router_quota),
		reservations_per_hour = coalesce(p_rate, reservations_per_hour)
	WHERE slug = p_slug RETURNING * INTO t;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_slug));
	END IF;
	PERFORM wgf_audit(c, 'api', 'tenant.updated', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('router_quota', p_quota, 'reservations_per_hour', p_rate), t.id);
	RETURN wgf_tenant_json(t);
END
$$;

-- Admin: API keys. The coordinator makes the secret and its hash; only the hash lands here.
CREATE FUNCTION wgf_api_create_key(p_prefix text, p_hash bytea, p_slug text,
	p_new_prefix text, p_new_hash bytea, p_label text, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	t tenants;
	v_id bigint;
BEGIN
	SELECT * INTO t FROM tenants WHERE slug = p_slug;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_slug));
	END IF;
	INSERT INTO api_keys (tenant_id, scope, prefix, hash, label)
	VALUES (t.id, 'tenant', p_new_prefix, p_new_hash, p_label) RETURNING id INTO v_id;
	PERFORM wgf_audit(c, 'api', 'key.created', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('key_id', v_id, 'label', p_label), t.id);
	RETURN jsonb_build_object('id', v_id, 'tenant', t.slug, 'label', p_label,
		'scope', 'tenant');
END
$$;

-- Used by `wgfleet-coordinator create-admin-key` (no caller: the operator at the console).
CREATE FUNCTION wgf_create_admin_key(p_new_prefix text, p_new_hash bytea, p_label text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	INSERT INTO api_keys (tenant_id, scope, prefix, hash, label)
	VALUES (NULL, 'admin', p_new_prefix, p_new_hash, p_label) RETURNING id INTO v_id;
	INSERT INTO audit_log (actor, action, detail)
	VALUES ('cli', 'key.created', jsonb_build_object('key_id', v_id, 'scope', 'admin',
		'label', p_label));
	RETURN v_id;
END
$$;

CREATE FUNCTION wgf_api_revoke_key(p_prefix text, p_hash bytea, p_id bigint, p_request_id text)
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
	RETURN jsonb_build_object('status', 204);
END
$$;

-- Admin: servers. Creating one fills its free list: every address of the pool but the
-- network, the gateway and (IPv4) the broadcast address.
CREATE FUNCTION wgf_server_json(s servers) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('name', s.name, 'endpoint', s.endpoint, 'interface', s.interface,
		'pool', s.pool::text, 'gateway', host(s.gateway),
		'agent_key', encode(s.agent_key, 'base64'),
		'public_key', encode(s.wg_public_key, 'base64'), 'listen_port', s.wg_listen_port,
		'revision', s.revision, 'applied_revision', s.applied_revision,
		'last_seen_at', s.last_seen_at, 'created_at', s.created_at);
$$;

CREATE FUNCTION wgf_api_create_server(p_prefix text, p_hash bytea, p_name text,
	p_endpoint text, p_interface text, p_pool cidr, p_gateway inet, p_agent_key bytea,
	p_public_key bytea, p_listen_port integer, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	s servers;
	v_size bigint;
BEGIN
	IF family(p_pool) = 4 THEN
		v_size := 2 ^ (32 - masklen(p_pool));
	ELSE
		v_size := 2 ^ least(128 - masklen(p_pool), 24);
	END IF;
	IF family(p_pool) = 4 AND masklen(p_pool) > 30 OR family(p_pool) = 6 AND masklen(p_pool) > 126 THEN
		PERFORM wgf_raise('WG400', 'invalid_request', 'pool: too small to hold a gateway and a router.');
	END IF;
	IF v_size > 65536 * 4 THEN
		PERFORM wgf_raise('WG400', 'invalid_request', 'pool: larger than a /14 (262,144 addresses).');
	END IF;
	IF NOT p_gateway << p_pool THEN
		PERFORM wgf_raise('WG400', 'invalid_request', 'gateway: not inside the pool.');
	END IF;
	BEGIN
		INSERT INTO servers (name, endpoint, interface, pool, gateway, agent_key,
			wg_public_key, wg_listen_port)
		VALUES (p_name, p_endpoint, coalesce(p_interface, 'wg0'), p_pool, p_gateway,
			p_agent_key, p_public_key, p_listen_port) RETURNING * INTO s;
	EXCEPTION
		WHEN unique_violation THEN
			PERFORM wgf_raise('WG409', 'server_exists', 'A server with this name or agent key exists.');
		WHEN check_violation THEN
			PERFORM wgf_raise('WG400', 'invalid_request', 'name: lower-case letters, digits, dots and dashes; interface: at most 15 characters.');
	END;
	INSERT INTO pool_addresses (server_id, ip)
	SELECT s.id, host(p_pool)::inet + n
	FROM generate_series(1, v_size - CASE WHEN family(p_pool) = 4 THEN 2 ELSE 1 END) AS n
	WHERE host(p_pool)::inet + n <> p_gateway;
	INSERT INTO server_usage (server_id, shard) SELECT s.id, g FROM generate_series(0, 15) g;
	PERFORM wgf_audit(c, 'api', 'server.created', NULL, s.id, NULL, p_request_id,
		jsonb_build_object('name', p_name, 'pool', p_pool::text));
	RETURN wgf_server_json(s);
END
$$;

CREATE FUNCTION wgf_api_list_servers(p_prefix text, p_hash bytea)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(wgf_server_json(s) ORDER BY s.name), '[]')
		FROM servers s));
END
$$;

-- The sweeper: pending reservations past their expiry become expired and give their
-- address back; old idempotency records go. One coordinator at a time (the
-- transaction-level advisory lock); returns how many routers expired.
CREATE FUNCTION wgf_sweep(p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	r routers;
	n integer := 0;
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265074) THEN
		RETURN 0;
	END IF;
	FOR r IN SELECT * FROM routers WHERE status = 'pending' AND reservation_expires_at <= now()
		ORDER BY reservation_expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED
	LOOP
		PERFORM wgf_release_address(r);
		UPDATE routers SET status = 'expired', released_at = now(),
			status_reason = 'reservation expired before a public key was submitted'
		WHERE id = r.id;
		INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
		VALUES (r.tenant_id, 'sweeper', 'router.expired', r.id, r.server_id, r.vpn_ip,
			jsonb_build_object('expired_at', r.reservation_expires_at));
		n := n + 1;
	END LOOP;
	DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
	RETURN n;
END
$$;
