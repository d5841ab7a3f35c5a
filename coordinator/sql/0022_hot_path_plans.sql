-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0022_hot_path_plans: the LANGUAGE sql functions that every key change calls
-- (wgf_webhook_heard, wgf_changes_after, wgf_peer_ip, wgf_cluster_generation) are
-- PL/pgSQL now. Each pins its search_path (wgf_pin_search_paths), so none can be
-- inlined, and PostgreSQL 15 parses and plans a LANGUAGE sql body again in every
-- transaction that calls it; PL/pgSQL keeps its plans for the session. Measured with
-- pg_stat_statements (track = all, track_planning) during propagation.py: planning
-- wgf_changes_after's body took 0.44 ms a call and wgf_webhook_heard's 0.19 ms (twice
-- a change, from the audit trigger). The bodies and answers are 0007's and 0018's;
-- only the language, RETURN / RETURN QUERY around the same expression or statement,
-- and the generic plan where it is the right one changed.

-- As in 0018. Its statement has no parameter that a custom plan could use better (the
-- webhooks table is small), so the generic plan is kept from the first call.
CREATE OR REPLACE FUNCTION wgf_webhook_heard(p_type text, p_tenant bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM webhooks w WHERE w.active
		AND (w.tenant_id IS NULL OR w.tenant_id = p_tenant)
		AND (cardinality(w.events) = 0 OR p_type = ANY (w.events)));
END
$$;

-- As in 0007. The generic plan is an index range scan of the server's changes after
-- p_after and one primary-key probe of routers each, which is right for every delta; a
-- custom plan, which the plan cache would keep choosing (it estimates the few changes
-- past a recent revision as cheaper), costs its planning at every call.
CREATE OR REPLACE FUNCTION wgf_changes_after(p_server bigint, p_after bigint)
RETURNS TABLE (op smallint, change_revision bigint, public_key bytea, allowed_ip cidr,
	keepalive integer)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT CASE c.op WHEN 'upsert' THEN 1 ELSE 2 END::smallint, c.revision, c.public_key,
		CASE WHEN c.op = 'upsert' THEN wgf_peer_ip(r.vpn_ip) END,
		CASE WHEN c.op = 'upsert' THEN coalesce(r.persistent_keepalive, 0) END
	FROM changes c JOIN routers r ON r.id = c.router_id
	WHERE c.server_id = p_server AND c.revision > p_after ORDER BY c.revision;
END
$$;

-- As in 0007 (once a delta's upsert, from wgf_changes_after()).
CREATE OR REPLACE FUNCTION wgf_peer_ip(p_ip inet) RETURNS cidr
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN set_masklen(p_ip, CASE WHEN family(p_ip) = 4 THEN 32 ELSE 128 END)::cidr;
END
$$;

-- As in 0007 (called by wgf_epoch(), twice a change: the sync and the report).
CREATE OR REPLACE FUNCTION wgf_cluster_generation(OUT system_identifier bigint,
	OUT timeline bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	system_identifier := (pg_control_system()).system_identifier;
	timeline := ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint;
END
$$;

CALL wgf_pin_search_paths(current_schema());
