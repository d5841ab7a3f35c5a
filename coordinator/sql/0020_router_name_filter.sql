-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0020_router_name_filter: GET /v1/routers?name= finds routers by the name their
-- tenant gave them (the dashboard's search, `wgfleetctl routers list --name`). Names
-- are not unique across tenants, so it is a filter like the others, with an index.

CREATE INDEX routers_name ON routers (name, created_at, id) WHERE status <> 'deleted';

DROP FUNCTION wgf_api_list_routers(text, bytea, text, text, text, inet, timestamptz, integer,
	text);
CREATE FUNCTION wgf_api_list_routers(p_prefix text, p_hash bytea, p_status text,
	p_server text, p_tenant text, p_ip inet, p_name text, p_handshake_before timestamptz,
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
		  AND (p_name IS NULL OR r.name = p_name)
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

-- As 0017 says: planned for the values given, so each filter's index serves it.
ALTER FUNCTION wgf_api_list_routers(text, bytea, text, text, text, inet, text, timestamptz,
	integer, text) SET plan_cache_mode = force_custom_plan;

CALL wgf_pin_search_paths(current_schema());
