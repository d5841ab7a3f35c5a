-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0012_fleet_status: GET /v1/status in one pass over the live routers. 0008's version
-- counted each server's connected routers with a query of its own that no index
-- serves: at 1,000 servers and 100,000 routers one status took 17-22 s (this machine),
-- which the dashboard and `wgfleetctl status` ask for every few seconds.

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
			'cache_error', s.cache_error,
			'peers', coalesce(r.peers, 0),
			'connected', coalesce(r.connected, 0),
			'drift_repairs', s.drift_repairs,
			'apply_latency', wgf_apply_latency(s.id),
			'pool', jsonb_build_object('cidr', s.pool::text,
				'size', coalesce(p.size, 0), 'used', coalesce(u.used, 0)))
			ORDER BY s.name), '[]')
			FROM servers s
			LEFT JOIN (SELECT server_id, count(*) FILTER (WHERE public_key IS NOT NULL) AS peers,
					count(*) FILTER (WHERE status = 'connected') AS connected
				FROM routers WHERE released_at IS NULL GROUP BY server_id) r ON r.server_id = s.id
			LEFT JOIN (SELECT server_id, count(*) AS size FROM pool_addresses
				GROUP BY server_id) p ON p.server_id = s.id
			LEFT JOIN (SELECT server_id, sum(used) AS used FROM server_usage
				GROUP BY server_id) u ON u.server_id = s.id
			WHERE s.deleted_at IS NULL),
		'routers', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
			(SELECT status, count(*) AS n FROM routers WHERE status <> 'deleted' GROUP BY status) x));
END
$$;

CALL wgf_pin_search_paths(current_schema());
