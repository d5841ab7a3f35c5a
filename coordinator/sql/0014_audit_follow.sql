-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0014_audit_follow: following the audit log without missing an entry. Ids are taken
-- when a row is inserted, not when its transaction commits, so an entry can become
-- visible after one with a larger id: a reader asking for "ids after the last one I
-- saw" skips it for good. Each entry now records its transaction (xid8), and a
-- follower reads in transaction order, only entries of transactions older than every
-- one still running (the snapshot's xmin): those are final, and every entry still to
-- come belongs to a transaction at or past that xmin. Its cursor is "xact.id".

ALTER TABLE audit_log ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_log_xact ON audit_log (xact, id);

DROP FUNCTION wgf_api_audit(text, bytea, uuid, text, inet, text, timestamptz, timestamptz,
	bigint, integer);
-- GET /v1/audit. With p_follow (a cursor from an earlier answer's follow_cursor, or ''
-- for the beginning), entries in transaction order from the cursor, and a new cursor
-- to ask with next; without it, entries in id order (p_after: with a larger id).
CREATE FUNCTION wgf_api_audit(p_prefix text, p_hash bytea, p_router uuid, p_tenant text,
	p_ip inet, p_action text, p_since timestamptz, p_until timestamptz, p_after bigint,
	p_follow text, p_limit integer)
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
	-- One statement, its order chosen from two constants, so either order's index
	-- serves the LIMIT.
	v_order := CASE WHEN p_follow IS NULL THEN 'a.id' ELSE 'a.xact, a.id' END;
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
			  AND (NOT $10 OR ((xact, id) > ($11, $12) AND xact < $13))
			ORDER BY %2$s LIMIT $14) a
		LEFT JOIN tenants t ON t.id = a.tenant_id$q$, v_order, replace(v_order, 'a.', ''))
		INTO v_items, v_n, v_last_xact, v_last_id
		USING c.scope = 'admin', c.tenant_id, v_tenant, p_router, p_ip, p_action, p_since,
			p_until, p_after, p_follow IS NOT NULL, v_xact, v_id, v_xmin, p_limit;
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

CALL wgf_pin_search_paths(current_schema());
