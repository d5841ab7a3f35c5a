-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0009_ctl: what the operators' command line (wgfleetctl) asks of the admin API: one
-- tenant, one server, the keys, admin keys made through the API, routers and audit
-- entries filtered the ways an operator looks for them, and an audit cursor to follow
-- new entries. Tenant keys keep seeing only their own tenant's rows.

-- Audit entries by action, and the handshake filter of the router list.
CREATE INDEX audit_log_action ON audit_log (action, id);

-- GET /v1/tenants/{slug}
CREATE FUNCTION wgf_api_get_tenant(p_prefix text, p_hash bytea, p_slug text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	t tenants;
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	SELECT * INTO t FROM tenants WHERE slug = p_slug;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_slug));
	END IF;
	RETURN wgf_tenant_json(t) || jsonb_build_object('keys',
		(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL));
END
$$;

-- GET /v1/servers/{name}: the server and its live routers by status.
CREATE FUNCTION wgf_api_get_server(p_prefix text, p_hash bytea, p_name text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	s servers;
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	SELECT * INTO s FROM servers WHERE name = p_name AND deleted_at IS NULL;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	RETURN wgf_server_json(s) || jsonb_build_object('routers',
		(SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (SELECT status, count(*) AS n
			FROM routers WHERE server_id = s.id AND released_at IS NULL GROUP BY status) x));
END
$$;

-- GET /v1/keys: every key (admin and tenant), newest last; never the hash.
CREATE FUNCTION wgf_api_list_keys(p_prefix text, p_hash bytea, p_tenant text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	IF p_tenant IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tenants WHERE slug = p_tenant) THEN
		PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_tenant));
	END IF;
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(jsonb_build_object(
			'id', k.id, 'scope', k.scope, 'tenant', t.slug, 'prefix', k.prefix,
			'label', k.label, 'created_at', k.created_at, 'revoked_at', k.revoked_at)
			ORDER BY k.id), '[]')
		FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id
		WHERE p_tenant IS NULL OR t.slug = p_tenant));
END
$$;

-- POST /v1/keys: an admin key, made by an admin key. The coordinator makes the secret
-- and its hash, as for tenant keys; only the hash lands here.
CREATE FUNCTION wgf_api_create_admin_key(p_prefix text, p_hash bytea, p_new_prefix text,
	p_new_hash bytea, p_label text, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	v_id bigint;
BEGIN
	INSERT INTO api_keys (tenant_id, scope, prefix, hash, label)
	VALUES (NULL, 'admin', p_new_prefix, p_new_hash, p_label) RETURNING id INTO v_id;
	PERFORM wgf_audit(c, 'api', 'key.created', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('key_id', v_id, 'scope', 'admin', 'label', p_label));
	RETURN jsonb_build_object('id', v_id, 'tenant', NULL, 'label', p_label, 'scope', 'admin');
END
$$;

-- GET /v1/routers, with the operator's filters: tenant (slug), address, and a handshake
-- older than a time (or none at all). Items name their tenant.
DROP FUNCTION wgf_api_list_routers(text, bytea, text, text, integer, text);
CREATE FUNCTION wgf_api_list_routers(p_prefix text, p_hash bytea, p_status text,
	p_server text, p_tenant text, p_ip inet, p_handshake_before timestamptz,
	p_limit integer, p_cursor text)
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
		SELECT r.id, r.created_at, t.slug FROM routers r
		JOIN tenants t ON t.id = r.tenant_id
		LEFT JOIN servers s ON s.id = r.server_id
		WHERE (r.tenant_id = c.tenant_id OR c.scope = 'admin')
		  AND r.status <> 'deleted'
		  AND (p_status IS NULL OR r.status = p_status::router_status)
		  AND (p_server IS NULL OR s.name = p_server)
		  AND (p_tenant IS NULL OR t.slug = p_tenant)
		  AND (p_ip IS NULL OR r.vpn_ip = p_ip)
		  AND (p_handshake_before IS NULL OR r.last_handshake_at IS NULL
			OR r.last_handshake_at < p_handshake_before)
		  AND (p_cursor IS NULL OR (r.created_at, r.id) > (v_after_at, v_after_id))
		ORDER BY r.created_at, r.id
		LIMIT p_limit
	)
	SELECT coalesce(jsonb_agg((wgf_router_json(r) - '_server')
			|| jsonb_build_object('tenant', page.slug) ORDER BY page.created_at, page.id), '[]'),
		count(*)
	INTO v_items, v_n
	FROM page JOIN routers r ON r.id = page.id;
	IF v_n = p_limit THEN
		SELECT * INTO v_last FROM routers WHERE id = (v_items -> (v_n - 1) ->> 'id')::uuid;
		RETURN jsonb_build_object('items', v_items, 'next_cursor',
			translate(encode(convert_to(v_last.created_at::text || ',' || v_last.id, 'UTF8'),
				'base64'), E'\n', ''));
	END IF;
	RETURN jsonb_build_object('items', v_items, 'next_cursor', NULL);
END
$$;

-- GET /v1/audit, with the operator's filters; p_after (an entry's id) gives the entries
-- after it, which is how `wgfleetctl audit --follow` asks for what is new.
DROP FUNCTION wgf_api_audit(text, bytea, uuid, timestamptz, integer);
CREATE FUNCTION wgf_api_audit(p_prefix text, p_hash bytea, p_router uuid, p_tenant text,
	p_ip inet, p_action text, p_since timestamptz, p_until timestamptz, p_after bigint,
	p_limit integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_tenant bigint;
BEGIN
	IF p_tenant IS NOT NULL THEN
		-- An admin hears of a slug that does not exist; a tenant key only ever sees
		-- its own rows, and learns nothing of other tenants' slugs.
		SELECT id INTO v_tenant FROM tenants WHERE slug = p_tenant;
		IF NOT FOUND AND c.scope = 'admin' THEN
			PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_tenant));
		END IF;
		v_tenant := coalesce(v_tenant, -1);
	END IF;
	RETURN (SELECT jsonb_build_object('items', coalesce(jsonb_agg(jsonb_build_object(
			'id', a.id, 'at', a.at, 'tenant', t.slug, 'api_key_id', a.api_key_id,
			'actor', a.actor, 'action', a.action, 'router_id', a.router_id,
			'vpn_ip', host(a.vpn_ip), 'request_id', a.request_id, 'detail', a.detail)
			ORDER BY a.id), '[]'))
		FROM (SELECT * FROM audit_log
			WHERE (tenant_id = c.tenant_id OR c.scope = 'admin')
			  AND (v_tenant IS NULL OR tenant_id = v_tenant)
			  AND (p_router IS NULL OR router_id = p_router)
			  AND (p_ip IS NULL OR vpn_ip = p_ip)
			  AND (p_action IS NULL OR action = p_action)
			  AND (p_since IS NULL OR at >= p_since)
			  AND (p_until IS NULL OR at < p_until)
			  AND (p_after IS NULL OR id > p_after)
			ORDER BY id LIMIT p_limit) a
		LEFT JOIN tenants t ON t.id = a.tenant_id);
END
$$;

CALL wgf_pin_search_paths(current_schema());
