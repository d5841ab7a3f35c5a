-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0008_agent_cache_error: an agent that cannot write its desired-state cache says so in
-- its reports (Report.cache_error, proto/wgfleet.proto), and the servers list and the
-- status show it. While it is set, a restart of that agent starts from an older desired
-- set than the one applied: it removes nothing until the coordinator answers, but an
-- operator should free the disk.

-- NULL while the agent's cache is written (or it never said otherwise).
ALTER TABLE servers ADD COLUMN cache_error text CHECK (length(cache_error) <= 500);

-- 0007's report, and the cache's state: an empty p_cache_error clears it. 0007's
-- function stays for callers that do not send it (an older coordinator in a rolling
-- upgrade), and leaves cache_error as it was.
CREATE FUNCTION wgf_agent_report(p_agent_key bytea, p_nonce bytea, p_epoch bytea,
	p_applied bigint, p_error_keys bytea, p_error_reasons text[], p_fact_keys bytea,
	p_fact_handshake_ms bigint[], p_fact_endpoints text[], p_fact_rx bigint[],
	p_fact_tx bigint[], p_wg_key bytea, p_listen_port integer, p_drift_keys bytea,
	p_drift_kinds smallint[], p_handshake_window interval, p_cache_error text)
RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	h record;
BEGIN
	SELECT * INTO h FROM wgf_agent_report(p_agent_key, p_nonce, p_epoch, p_applied,
		p_error_keys, p_error_reasons, p_fact_keys, p_fact_handshake_ms, p_fact_endpoints,
		p_fact_rx, p_fact_tx, p_wg_key, p_listen_port, p_drift_keys, p_drift_kinds,
		p_handshake_window);
	UPDATE servers SET cache_error = nullif(left(p_cache_error, 500), '')
	WHERE id = h.server_id AND cache_error IS DISTINCT FROM nullif(left(p_cache_error, 500), '');
	RETURN QUERY SELECT h.server_id, h.server, h.epoch, h.revision;
END
$$;

CREATE OR REPLACE FUNCTION wgf_server_json(s servers) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('name', s.name, 'endpoint', s.endpoint, 'interface', s.interface,
		'pool', s.pool::text, 'gateway', host(s.gateway),
		'agent_key', encode(s.agent_key, 'base64'),
		'public_key', encode(s.wg_public_key, 'base64'), 'listen_port', s.wg_listen_port,
		'revision', s.revision, 'applied_revision', s.applied_revision,
		'cache_error', s.cache_error,
		'last_seen_at', s.last_seen_at, 'created_at', s.created_at);
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
			'cache_error', s.cache_error,
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

-- As at the end of 0004: every function of this schema runs with a pinned search_path.
CALL wgf_pin_search_paths(current_schema());
