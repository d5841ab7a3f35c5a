-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0015_adopt: the peers an agent in adopt mode keeps on its interface without managing
-- them (unknown peers), as its reports list them, and the ones an operator released,
-- which the agent then removes. A report's list replaces the server's when it differs
-- (a digest of it is kept, so an unchanged list costs one comparison); the server's row
-- is already locked by the report, so two reports never interleave their lists.

CREATE TABLE unknown_peers (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	public_key bytea NOT NULL CHECK (length(public_key) = 32),
	allowed_ips cidr[] NOT NULL,
	last_handshake_at timestamptz,
	endpoint text CHECK (length(endpoint) <= 64),
	PRIMARY KEY (server_id, public_key)
);

-- Released by an operator: the agent removes them even in adopt mode. A key is forgotten
-- once a whole list from the agent no longer has it.
CREATE TABLE released_peers (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	public_key bytea NOT NULL CHECK (length(public_key) = 32),
	released_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (server_id, public_key)
);

-- unknown_total: how many the agent reported (beyond the 1,000 it lists), less the
-- released ones among them. unknown_digest: of the last list taken.
ALTER TABLE servers ADD COLUMN unknown_total integer NOT NULL DEFAULT 0
		CHECK (unknown_total >= 0),
	ADD COLUMN unknown_digest bytea;

-- The unknown peers a server shows: a key that is a live router there is not one (an
-- import made it one; the agent's next list drops it).
CREATE FUNCTION wgf_unknown_count(s servers) RETURNS integer LANGUAGE sql STABLE AS $$
	SELECT greatest(s.unknown_total - (SELECT count(*) FROM unknown_peers u
		JOIN routers r ON r.public_key = u.public_key AND r.server_id = s.id
			AND r.released_at IS NULL
		WHERE u.server_id = s.id), 0)::integer;
$$;

-- A report with its unknown peers: the keys (32 bytes each) with, per key, its allowed
-- IPs joined by commas, its handshake (unix ms, 0 never) and endpoint ('' none). With
-- p_listed false the list is not in this report and nothing changes. Returns 0008's
-- answer and the server's released keys (32 bytes each, the first 1,000 in key order),
-- for the agent.
CREATE FUNCTION wgf_agent_report(p_agent_key bytea, p_nonce bytea, p_epoch bytea,
	p_applied bigint, p_error_keys bytea, p_error_reasons text[], p_fact_keys bytea,
	p_fact_handshake_ms bigint[], p_fact_endpoints text[], p_fact_rx bigint[],
	p_fact_tx bigint[], p_wg_key bytea, p_listen_port integer, p_drift_keys bytea,
	p_drift_kinds smallint[], p_handshake_window interval, p_cache_error text,
	p_listed boolean, p_total integer, p_keys bytea, p_ips text[], p_handshake_ms bigint[],
	p_endpoints text[])
RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint, released bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	h record;
	n integer := coalesce(length(p_keys), 0) / 32;
	v_digest bytea;
	v_taken integer;
BEGIN
	SELECT * INTO h FROM wgf_agent_report(p_agent_key, p_nonce, p_epoch, p_applied,
		p_error_keys, p_error_reasons, p_fact_keys, p_fact_handshake_ms, p_fact_endpoints,
		p_fact_rx, p_fact_tx, p_wg_key, p_listen_port, p_drift_keys, p_drift_kinds,
		p_handshake_window, p_cache_error);
	IF p_listed THEN
		v_digest := sha256(coalesce(p_keys, '') || convert_to(concat_ws('|', p_total,
			array_to_string(p_ips, ';', ''), array_to_string(p_handshake_ms, ';', ''),
			array_to_string(p_endpoints, ';', '')), 'UTF8'));
	END IF;
	IF p_listed AND v_digest IS DISTINCT FROM
		(SELECT s.unknown_digest FROM servers s WHERE s.id = h.server_id) THEN
		DELETE FROM unknown_peers u WHERE u.server_id = h.server_id;
		INSERT INTO unknown_peers (server_id, public_key, allowed_ips, last_handshake_at,
			endpoint)
		SELECT h.server_id, k.key, coalesce(string_to_array(nullif(p_ips[k.i], ''), ',')::cidr[],
				'{}'),
			CASE WHEN p_handshake_ms[k.i] > 0 THEN to_timestamp(p_handshake_ms[k.i] / 1000.0) END,
			nullif(left(p_endpoints[k.i], 64), '')
		FROM (SELECT i, substring(p_keys FROM (i - 1) * 32 + 1 FOR 32) AS key
			FROM generate_series(1, n) i) k
		WHERE NOT EXISTS (SELECT 1 FROM released_peers rp
			WHERE rp.server_id = h.server_id AND rp.public_key = k.key);
		GET DIAGNOSTICS v_taken = ROW_COUNT;
		-- A whole list that lacks a released key: the agent removed it.
		IF n = p_total THEN
			DELETE FROM released_peers rp WHERE rp.server_id = h.server_id
				AND NOT EXISTS (SELECT 1 FROM generate_series(1, n) i
					WHERE substring(p_keys FROM (i - 1) * 32 + 1 FOR 32) = rp.public_key);
		END IF;
		UPDATE servers s SET unknown_digest = v_digest,
			unknown_total = greatest(p_total - (n - v_taken), 0)
		WHERE s.id = h.server_id;
	END IF;
	RETURN QUERY SELECT h.server_id, h.server, h.epoch, h.revision,
		(SELECT coalesce(string_agg(x.public_key, ''::bytea ORDER BY x.public_key), '')
			FROM (SELECT rp.public_key FROM released_peers rp WHERE rp.server_id = h.server_id
				ORDER BY rp.public_key LIMIT 1000) x);
END
$$;

-- GET /v1/servers/{name}/unknown-peers: a page in key order, after the key p_after;
-- next_after is the page's last key in URL-safe base64, for the next page's ?after=.
CREATE FUNCTION wgf_api_unknown_peers(p_prefix text, p_hash bytea, p_name text,
	p_after bytea, p_limit integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	s servers;
	v_items jsonb;
	v_last bytea;
	v_more boolean;
BEGIN
	PERFORM wgf_auth(p_prefix, p_hash, true);
	SELECT * INTO s FROM servers WHERE name = p_name AND deleted_at IS NULL;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	WITH page AS (
		SELECT u.* FROM unknown_peers u
		WHERE u.server_id = s.id AND (p_after IS NULL OR u.public_key > p_after)
			AND NOT EXISTS (SELECT 1 FROM routers r WHERE r.public_key = u.public_key
				AND r.server_id = s.id AND r.released_at IS NULL)
		ORDER BY u.public_key LIMIT p_limit + 1
	), shown AS (
		SELECT * FROM page ORDER BY public_key LIMIT p_limit
	)
	SELECT coalesce(jsonb_agg(jsonb_build_object(
			'public_key', encode(public_key, 'base64'),
			'allowed_ips', (SELECT coalesce(jsonb_agg(a::text), '[]') FROM unnest(allowed_ips) a),
			'last_handshake_at', last_handshake_at, 'endpoint', endpoint)
			ORDER BY public_key), '[]'),
		(array_agg(public_key ORDER BY public_key DESC))[1],
		(SELECT count(*) > p_limit FROM page)
	INTO v_items, v_last, v_more FROM shown;
	RETURN jsonb_build_object('items', v_items, 'total', wgf_unknown_count(s),
		'next_after', CASE WHEN v_more THEN translate(encode(v_last, 'base64'), '+/', '-_') END);
END
$$;

-- DELETE /v1/servers/{name}/unknown-peers/{key}: the agent removes the peer at its next
-- report's answer, even in adopt mode.
CREATE FUNCTION wgf_api_release_peer(p_prefix text, p_hash bytea, p_name text, p_key bytea,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	s servers;
	u unknown_peers;
BEGIN
	SELECT * INTO s FROM servers WHERE name = p_name AND deleted_at IS NULL FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	DELETE FROM unknown_peers WHERE server_id = s.id AND public_key = p_key RETURNING * INTO u;
	IF NOT FOUND OR EXISTS (SELECT 1 FROM routers r WHERE r.public_key = p_key
		AND r.server_id = s.id AND r.released_at IS NULL) THEN
		PERFORM wgf_raise('WG404', 'peer_not_found',
			format('Server ''%s'' lists no unknown peer with this key.', p_name));
	END IF;
	INSERT INTO released_peers (server_id, public_key) VALUES (s.id, p_key);
	UPDATE servers SET unknown_total = greatest(unknown_total - 1, 0) WHERE id = s.id;
	PERFORM wgf_audit(c, 'api', 'peer.released', NULL, s.id, NULL, p_request_id,
		jsonb_build_object('public_key', encode(p_key, 'base64'),
			'allowed_ips', (SELECT coalesce(jsonb_agg(a::text), '[]') FROM unnest(u.allowed_ips) a)));
	RETURN jsonb_build_object('status', 204);
END
$$;

-- GET /v1/servers/{name}: 0009's, with the unknown peers' count.
CREATE OR REPLACE FUNCTION wgf_api_get_server(p_prefix text, p_hash bytea, p_name text)
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
			FROM routers WHERE server_id = s.id AND released_at IS NULL GROUP BY status) x),
		'unknown_peers', wgf_unknown_count(s));
END
$$;

-- GET /v1/status: 0012's, with each server's unknown peers' count.
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
			'unknown_peers', CASE WHEN s.unknown_total > 0 THEN wgf_unknown_count(s) ELSE 0 END,
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
