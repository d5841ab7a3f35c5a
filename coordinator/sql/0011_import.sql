-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0011_import: bringing routers that already exist under wgfleet, for one server, from
-- a list (a portal's database, or what the interface holds). A dry run says what would
-- be created and every conflict with its reason, and changes nothing; applying does all
-- of it in the one transaction or nothing.

-- POST /v1/servers/{name}/import. p_routers is a JSON array of objects {tenant, name,
-- address, public_key (base64, checked by the coordinator: 32 bytes, not a low-order
-- point), persistent_keepalive, created_at}, each optional but tenant, address and
-- public_key. The answer: {applied, routers: [{line, tenant, name, address,
-- public_key, id?}], conflicts: [{line, code, message}]}; lines count from 1. When
-- p_apply and nothing conflicts, every router is created `configured` with its key
-- (its peer goes to the agent like any other change), audited `router.imported` to its
-- tenant, and reaches `connected` from real handshakes; with a conflict, WG409
-- import_conflicts and nothing changes.
--
-- Lock order as everywhere (0004): the server's row, tenant rows in id order, pool
-- rows, server_usage. A line's created_at (when the router was first set up) may not
-- be later than now, nor earlier than the end of another router's lease of the same
-- address (the leases would overlap). The address cool-down of reservations does not
-- apply: an imported router already uses its address.
CREATE FUNCTION wgf_api_import(p_prefix text, p_hash bytea, p_server text, p_routers jsonb,
	p_apply boolean, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	s servers;
	l record;
	r routers;
	v_rev bigint;
	v_conflicts jsonb;
	v_routers jsonb := '[]';
BEGIN
	SELECT * INTO s FROM servers WHERE name = p_server AND deleted_at IS NULL
	FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_server));
	END IF;
	CREATE TEMP TABLE import_lines ON COMMIT DROP AS
	SELECT e.ord AS line, e.x->>'tenant' AS tenant_slug, t.id AS tenant_id,
		e.x->>'name' AS name, (e.x->>'address')::inet AS address,
		decode(e.x->>'public_key', 'base64') AS public_key,
		coalesce((e.x->>'persistent_keepalive')::integer, 25) AS keepalive,
		coalesce((e.x->>'created_at')::timestamptz, now()) AS created_at
	FROM jsonb_array_elements(p_routers) WITH ORDINALITY AS e(x, ord)
	LEFT JOIN tenants t ON t.slug = e.x->>'tenant';
	-- Tenants that gain routers, locked in id order, then the pool rows the lines want
	-- (a reservation meanwhile skips them: SKIP LOCKED), so what is checked below is
	-- what is applied.
	PERFORM 1 FROM tenants WHERE id IN (SELECT tenant_id FROM import_lines) ORDER BY id
	FOR NO KEY UPDATE;
	PERFORM 1 FROM pool_addresses WHERE server_id = s.id
		AND ip IN (SELECT address FROM import_lines) ORDER BY ip FOR UPDATE;

	-- Each line's first conflict, in the order a person would fix them; the quota last,
	-- counting only the lines that could be made.
	WITH firsts AS (
		SELECT il.line, il.tenant_id, il.tenant_slug, il.address, CASE
			WHEN il.tenant_id IS NULL THEN 'tenant_not_found'
			WHEN NOT il.address << s.pool THEN 'address_outside_pool'
			WHEN pa.ip IS NULL THEN 'address_reserved'
			WHEN EXISTS (SELECT 1 FROM import_lines o
				WHERE o.address = il.address AND o.line < il.line) THEN 'duplicate_address'
			WHEN EXISTS (SELECT 1 FROM import_lines o
				WHERE o.public_key = il.public_key AND o.line < il.line) THEN 'duplicate_public_key'
			WHEN pa.router_id IS NOT NULL THEN 'address_in_use'
			WHEN il.created_at > now() THEN 'created_in_future'
			WHEN EXISTS (SELECT 1 FROM routers x WHERE x.server_id = s.id
				AND x.vpn_ip = il.address AND x.released_at > il.created_at) THEN 'lease_overlap'
			WHEN EXISTS (SELECT 1 FROM routers x WHERE x.public_key = il.public_key
				AND x.released_at IS NULL) THEN 'public_key_in_use'
			END AS code
		FROM import_lines il
		LEFT JOIN pool_addresses pa ON pa.server_id = s.id AND pa.ip = il.address
	), wanted AS (
		SELECT f.tenant_id, count(*) AS n FROM firsts f WHERE f.code IS NULL GROUP BY f.tenant_id
	), coded AS (
		SELECT f.line, f.tenant_slug, f.address, t.router_quota, t.live_routers + w.n AS would,
			coalesce(f.code, CASE WHEN t.live_routers + w.n > t.router_quota
				THEN 'quota_exceeded' END) AS code
		FROM firsts f
		LEFT JOIN wanted w ON w.tenant_id = f.tenant_id
		LEFT JOIN tenants t ON t.id = f.tenant_id
	)
	SELECT coalesce(jsonb_agg(jsonb_build_object('line', x.line, 'code', x.code,
		'message', CASE x.code
			WHEN 'tenant_not_found' THEN format('No tenant is named ''%s''.', x.tenant_slug)
			WHEN 'address_outside_pool' THEN format('%s is not in the server''s pool %s.',
				host(x.address), s.pool)
			WHEN 'address_reserved' THEN format(
				'%s is the pool''s network, broadcast or gateway address.', host(x.address))
			WHEN 'duplicate_address' THEN format('%s is on an earlier line too.', host(x.address))
			WHEN 'duplicate_public_key' THEN 'This public key is on an earlier line too.'
			WHEN 'address_in_use' THEN format('%s is held by another router.', host(x.address))
			WHEN 'created_in_future' THEN 'created_at is later than now.'
			WHEN 'lease_overlap' THEN format(
				'%s was held by another router after created_at; a later created_at (or none) keeps the lease history true.',
				host(x.address))
			WHEN 'public_key_in_use' THEN 'This public key is already registered.'
			ELSE format('The tenant would have %s routers; its quota is %s.', x.would,
				x.router_quota)
			END) ORDER BY x.line), '[]') INTO v_conflicts
	FROM coded x WHERE x.code IS NOT NULL;

	IF p_apply AND jsonb_array_length(v_conflicts) > 0 THEN
		PERFORM wgf_raise('WG409', 'import_conflicts', format(
			'%s of %s lines conflict; nothing was imported (a dry run lists them).',
			jsonb_array_length(v_conflicts), jsonb_array_length(p_routers)));
	END IF;
	IF NOT p_apply THEN
		SELECT coalesce(jsonb_agg(jsonb_build_object('line', il.line, 'tenant', il.tenant_slug,
			'name', il.name, 'address', host(il.address),
			'public_key', encode(il.public_key, 'base64')) ORDER BY il.line), '[]')
		INTO v_routers FROM import_lines il
		WHERE il.line NOT IN (SELECT (x->>'line')::bigint FROM jsonb_array_elements(v_conflicts) x);
		RETURN jsonb_build_object('applied', false, 'routers', v_routers,
			'conflicts', v_conflicts);
	END IF;

	BEGIN
	FOR l IN SELECT * FROM import_lines ORDER BY line LOOP
		r := NULL;
		INSERT INTO routers (tenant_id, server_id, name, vpn_ip, public_key, status,
			status_reason, created_at, reservation_expires_at, configured_at,
			persistent_keepalive)
		VALUES (l.tenant_id, s.id, l.name, l.address, l.public_key, 'configured',
			'imported', l.created_at, now(), now(), l.keepalive)
		RETURNING * INTO r;
		UPDATE pool_addresses SET router_id = r.id WHERE server_id = s.id AND ip = l.address;
		v_rev := wgf_append_change(s.id, 'upsert', r.id, l.public_key, l.address, l.keepalive);
		UPDATE routers SET key_revision = v_rev WHERE id = r.id;
		PERFORM wgf_audit(c, 'api', 'router.imported', r.id, s.id, l.address, p_request_id,
			jsonb_build_object('name', l.name, 'public_key', encode(l.public_key, 'base64'),
				'line', l.line, 'revision', v_rev), l.tenant_id);
		v_routers := v_routers || jsonb_build_object('line', l.line, 'tenant', l.tenant_slug,
			'name', l.name, 'address', host(l.address),
			'public_key', encode(l.public_key, 'base64'), 'id', r.id);
	END LOOP;
	EXCEPTION WHEN unique_violation THEN
		-- A key taken since the check by an import on another server and tenant (the
		-- one path that shares no row lock with this one).
		PERFORM wgf_raise('WG409', 'import_conflicts',
			'A public key or address was registered meanwhile; nothing was imported (a dry run lists it).');
	END;
	UPDATE tenants t SET live_routers = t.live_routers + g.n
	FROM (SELECT tenant_id, count(*) AS n FROM import_lines GROUP BY tenant_id) g
	WHERE t.id = g.tenant_id;
	UPDATE server_usage SET used = used + (SELECT count(*) FROM import_lines)
	WHERE server_id = s.id AND shard = txid_current() % 16;
	RETURN jsonb_build_object('applied', true, 'routers', v_routers, 'conflicts', '[]'::jsonb);
END
$$;

CALL wgf_pin_search_paths(current_schema());
