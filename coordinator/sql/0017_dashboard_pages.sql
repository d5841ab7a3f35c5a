-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0017_dashboard_pages: pages for what the dashboard lists, so that at 1,000 servers and
-- 100,000 routers it never asks for everything. GET /v1/status takes limit and cursor
-- (servers by name; without limit the answer is the whole fleet, 0015's), and
-- GET /v1/audit takes order=newest and before (an id), which page the log from its
-- newest entry backwards.

-- The servers' status, by name, after p_after (a name), at most p_limit (NULL: all).
-- Only the page's servers' routers, addresses and usage shards are read.
CREATE FUNCTION wgf_status_servers(p_online_within interval, p_after text, p_limit integer)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	WITH page AS (SELECT s.*, CASE WHEN s.unknown_total > 0 THEN wgf_unknown_count(s)
			ELSE 0 END AS unknown_peers
		FROM servers s
		WHERE s.deleted_at IS NULL AND (p_after IS NULL OR s.name > p_after)
		ORDER BY s.name LIMIT p_limit)
	SELECT coalesce(jsonb_agg(jsonb_build_object(
		'name', s.name,
		'online', s.last_seen_at IS NOT NULL AND s.last_seen_at > now() - p_online_within,
		'last_seen_at', s.last_seen_at,
		'revision', s.revision, 'applied_revision', s.applied_revision,
		'revision_lag', s.revision - s.applied_revision,
		'cache_error', s.cache_error,
		'peers', coalesce(r.peers, 0),
		'connected', coalesce(r.connected, 0),
		'unknown_peers', s.unknown_peers,
		'drift_repairs', s.drift_repairs,
		'apply_latency', wgf_apply_latency(s.id),
		'pool', jsonb_build_object('cidr', s.pool::text,
			'size', coalesce(p.size, 0), 'used', coalesce(u.used, 0)))
		ORDER BY s.name), '[]')
	FROM page s
	LEFT JOIN (SELECT server_id, count(*) FILTER (WHERE public_key IS NOT NULL) AS peers,
			count(*) FILTER (WHERE status = 'connected') AS connected
		FROM routers WHERE released_at IS NULL AND server_id IN (SELECT id FROM page)
		GROUP BY server_id) r ON r.server_id = s.id
	LEFT JOIN (SELECT server_id, count(*) AS size FROM pool_addresses
		WHERE server_id IN (SELECT id FROM page) GROUP BY server_id) p ON p.server_id = s.id
	LEFT JOIN (SELECT server_id, sum(used) AS used FROM server_usage
		WHERE server_id IN (SELECT id FROM page) GROUP BY server_id) u ON u.server_id = s.id;
$$;

-- GET /v1/status. p_limit NULL: every server, the answer 0015 gave. Else one page of
-- servers by name after p_cursor (the last name of the page before), with next_cursor
-- (NULL on the last page) and servers_total; the routers per status are the fleet's.
DROP FUNCTION wgf_api_status(text, bytea, interval);
CREATE FUNCTION wgf_api_status(p_prefix text, p_hash bytea, p_online_within interval,
	p_limit integer, p_cursor text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_servers jsonb;
	v_status jsonb;
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	v_servers := wgf_status_servers(p_online_within, p_cursor, p_limit);
	v_status := jsonb_build_object('servers', v_servers,
		'routers', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
			(SELECT status, count(*) AS n FROM routers WHERE status <> 'deleted'
			 GROUP BY status) x));
	IF p_limit IS NULL THEN
		RETURN v_status;
	END IF;
	RETURN v_status || jsonb_build_object(
		'servers_total', (SELECT count(*) FROM servers WHERE deleted_at IS NULL),
		'next_cursor', CASE WHEN jsonb_array_length(v_servers) = p_limit AND EXISTS (
			SELECT 1 FROM servers WHERE deleted_at IS NULL
				AND name > v_servers -> (p_limit - 1) ->> 'name')
			THEN v_servers -> (p_limit - 1) ->> 'name' END);
END
$$;

-- GET /v1/audit: 0014's, and p_before (entries with a smaller id) and p_newest (newest
-- first, the limit keeping the newest; not with p_follow, which the API refuses). The
-- order is one of three constant lists, so its index serves the LIMIT; every value is
-- a parameter.
DROP FUNCTION wgf_api_audit(text, bytea, uuid, text, inet, text, timestamptz, timestamptz,
	bigint, text, integer);
CREATE FUNCTION wgf_api_audit(p_prefix text, p_hash bytea, p_router uuid, p_tenant text,
	p_ip inet, p_action text, p_since timestamptz, p_until timestamptz, p_after bigint,
	p_before bigint, p_newest boolean, p_follow text, p_limit integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_xmin xid8 := pg_snapshot_xmin(pg_current_snapshot());
	v_tenant bigint;
	v_xact xid8 := '0';
	v_id bigint := 0;
	v_order text;
	v_items jsonb;
	v_n integer;
	v_last_xact xid8;
	v_last_id bigint;
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
	IF p_follow IS NOT NULL AND p_follow <> '' THEN
		-- The API checked the form (two whole numbers); a cursor ahead of what this
		-- database has seen (another cluster's) would skip entries: refused.
		v_xact := split_part(p_follow, '.', 1)::xid8;
		v_id := split_part(p_follow, '.', 2)::bigint;
		IF v_xact > pg_snapshot_xmax(pg_current_snapshot()) THEN
			PERFORM wgf_raise('WG400', 'invalid_follow',
				'This cursor is not from this coordinator''s database.');
		END IF;
	END IF;
	v_order := CASE WHEN p_follow IS NOT NULL THEN 'a.xact, a.id'
		WHEN p_newest THEN 'a.id DESC' ELSE 'a.id' END;
	EXECUTE format($q$SELECT coalesce(jsonb_agg(jsonb_build_object(
			'id', a.id, 'at', a.at, 'tenant', t.slug, 'api_key_id', a.api_key_id,
			'actor', a.actor, 'action', a.action, 'router_id', a.router_id,
			'vpn_ip', host(a.vpn_ip), 'request_id', a.request_id, 'detail', a.detail)
			ORDER BY %1$s), '[]'), count(*),
		(array_agg(a.xact ORDER BY a.xact DESC, a.id DESC))[1],
		(array_agg(a.id ORDER BY a.xact DESC, a.id DESC))[1]
		FROM (SELECT * FROM audit_log
			WHERE ($1 OR tenant_id = $2)
			  AND ($3 IS NULL OR tenant_id = $3)
			  AND ($4 IS NULL OR router_id = $4)
			  AND ($5 IS NULL OR vpn_ip = $5)
			  AND ($6 IS NULL OR action = $6)
			  AND ($7 IS NULL OR at >= $7)
			  AND ($8 IS NULL OR at < $8)
			  AND ($9 IS NULL OR id > $9)
			  AND ($15 IS NULL OR id < $15)
			  AND (NOT $10 OR ((xact, id) > ($11, $12) AND xact < $13))
			ORDER BY %2$s LIMIT $14) a
		LEFT JOIN tenants t ON t.id = a.tenant_id$q$, v_order, replace(v_order, 'a.', ''))
		INTO v_items, v_n, v_last_xact, v_last_id
		USING c.scope = 'admin', c.tenant_id, v_tenant, p_router, p_ip, p_action, p_since,
			p_until, p_after, p_follow IS NOT NULL, v_xact, v_id, v_xmin, p_limit, p_before;
	IF p_follow IS NULL THEN
		RETURN jsonb_build_object('items', v_items);
	END IF;
	IF v_n >= p_limit THEN
		-- A full page: go on from its last entry.
		v_xact := v_last_xact;
		v_id := v_last_id;
	ELSIF v_xmin > v_xact THEN
		-- Everything before the running transactions was read.
		v_xact := v_xmin;
		v_id := 0;
	END IF;
	RETURN jsonb_build_object('items', v_items, 'follow_cursor', v_xact::text || '.' || v_id);
END
$$;

-- The dashboard's pages of failed and disconnected routers: the next 25 of a status in
-- the list's order, without sorting every router of that status (measured at 100,000
-- routers: 100-150 ms a page before, 10-17 ms with the index).
CREATE INDEX routers_status_page ON routers (status, created_at, id) WHERE status <> 'deleted';
-- GET /v1/routers's filters are "parameter IS NULL OR column = parameter"; a plan cached
-- for any values (PostgreSQL's generic plan, chosen after five calls on a connection)
-- can use no index for them and scanned every router: an address search took 300-470 ms
-- and a status page 750-880 ms at 100,000 routers, against 1 ms and 10 ms planned for
-- the values given.
ALTER FUNCTION wgf_api_list_routers(text, bytea, text, text, text, inet, timestamptz, integer,
	text) SET plan_cache_mode = force_custom_plan;

CALL wgf_pin_search_paths(current_schema());
