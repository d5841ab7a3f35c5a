-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0003_agents: what the coordinator needs to talk to agents (DESIGN.md principles 3, 4
-- and 7): replay protection shared by every replica, the desired peer set as deltas or
-- a snapshot, and reports that move routers along their statuses from what the data
-- plane shows. Each agent message is one function call, one transaction.

-- Nonces of accepted agent messages. A replica that sees a nonce again refuses it,
-- whichever replica saw it first. Rows older than the freshness window are useless
-- (a message that old is refused as stale) and are pruned.
CREATE TABLE agent_nonces (
	server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
	nonce bytea NOT NULL CHECK (length(nonce) = 16),
	seen_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (server_id, nonce)
);
CREATE INDEX agent_nonces_age ON agent_nonces (seen_at);

-- Hysteresis for connected -> disconnected: consecutive reports with a stale handshake.
ALTER TABLE routers ADD COLUMN stale_reports smallint NOT NULL DEFAULT 0;
-- Differences the agent found and repaired that it did not cause (peers changed by hand).
ALTER TABLE servers ADD COLUMN drift_repairs bigint NOT NULL DEFAULT 0;
CREATE INDEX routers_server_key ON routers (server_id, public_key) WHERE released_at IS NULL;
CREATE INDEX changes_unapplied ON changes (server_id, revision) WHERE applied_at IS NULL;

-- The server whose agent holds p_agent_key, after refusing a replayed nonce. Marks the
-- server seen.
CREATE FUNCTION wgf_agent_begin(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers;
BEGIN
	UPDATE servers SET last_seen_at = now() WHERE agent_key = p_agent_key RETURNING * INTO s;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG401', 'unknown_sender', 'No server is registered with this agent key.');
	END IF;
	INSERT INTO agent_nonces (server_id, nonce) VALUES (s.id, p_nonce) ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG409', 'replay', 'This message was seen before.');
	END IF;
	IF random() < 0.01 THEN
		DELETE FROM agent_nonces WHERE seen_at < now() - interval '10 minutes';
	END IF;
	RETURN s;
END
$$;

-- An agent's long poll (a Hint): who it is and the newest revision of its server.
CREATE FUNCTION wgf_agent_wait(p_agent_key bytea, p_nonce bytea) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
BEGIN
	RETURN jsonb_build_object('server_id', s.id, 'server', s.name, 'revision', s.revision);
END
$$;

CREATE FUNCTION wgf_peer_json(p_key bytea, p_ip inet, p_keepalive integer, p_router uuid)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('public_key', encode(p_key, 'base64'),
		'allowed_ips', jsonb_build_array(set_masklen(p_ip,
			CASE WHEN family(p_ip) = 4 THEN 32 ELSE 128 END)::cidr::text),
		'persistent_keepalive', p_keepalive, 'router_id', p_router);
$$;

-- The agent's "changes since my revision": the deltas in revision order, or the whole
-- desired set when it is new (0), ahead of us (a restored database) or too far behind.
-- Only this server's peers, ever.
CREATE FUNCTION wgf_agent_sync(p_agent_key bytea, p_nonce bytea, p_since bigint,
	p_want_snapshot boolean, p_max_deltas integer, p_keepalive integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
BEGIN
	IF p_want_snapshot OR p_since <= 0 OR p_since > s.revision
	   OR s.revision - p_since > p_max_deltas THEN
		RETURN jsonb_build_object('server_id', s.id, 'server', s.name, 'revision', s.revision,
			'snapshot', true,
			'peers', (SELECT coalesce(jsonb_agg(wgf_peer_json(r.public_key, r.vpn_ip,
					p_keepalive, r.id) ORDER BY r.vpn_ip), '[]')
				FROM routers r WHERE r.server_id = s.id AND r.released_at IS NULL
				  AND r.public_key IS NOT NULL),
			'changes', '[]'::jsonb);
	END IF;
	RETURN jsonb_build_object('server_id', s.id, 'server', s.name, 'revision', s.revision,
		'snapshot', false,
		'peers', '[]'::jsonb,
		'changes', (SELECT coalesce(jsonb_agg(jsonb_build_object('op', c.op,
				'revision', c.revision,
				'peer', wgf_peer_json(c.public_key, host(c.allowed_ips[1])::inet,
					c.persistent_keepalive, c.router_id)) ORDER BY c.revision), '[]')
			FROM changes c WHERE c.server_id = s.id AND c.revision > p_since));
END
$$;

-- One status move with its audit row; only along router_transitions (the trigger).
CREATE FUNCTION wgf_router_move(r routers, p_to router_status, p_reason text, p_action text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE routers SET status = p_to, status_reason = p_reason, stale_reports = 0
	WHERE id = r.id;
	INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
	VALUES (r.tenant_id, 'agent', p_action, r.id, r.server_id, r.vpn_ip,
		jsonb_build_object('from', r.status, 'to', p_to, 'reason', p_reason));
END
$$;

-- An agent's report: what it applied, what failed, what the interface shows.
--   p_errors  [{"public_key": b64, "reason": text}]
--   p_peers   [{"public_key": b64, "last_handshake_ms": n, "endpoint": text,
--               "rx_bytes": n, "tx_bytes": n}]
--   p_drift   [{"public_key": b64, "kind": "extra_peer"|"missing_peer"|"changed_peer"}]
CREATE FUNCTION wgf_agent_report(p_agent_key bytea, p_nonce bytea, p_applied bigint,
	p_errors jsonb, p_peers jsonb, p_wg_key bytea, p_listen_port integer, p_drift jsonb,
	p_handshake_window interval)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
	v_applied bigint := least(greatest(p_applied, 0), s.revision);
	v_failed bytea[];
	r routers;
	e jsonb;
	p jsonb;
	v_hs timestamptz;
	v_fresh boolean;
	n_moves integer := 0;
BEGIN
	UPDATE servers SET applied_revision = greatest(applied_revision, v_applied),
		wg_public_key = coalesce(p_wg_key, wg_public_key),
		wg_listen_port = coalesce(p_listen_port, wg_listen_port),
		drift_repairs = drift_repairs + jsonb_array_length(coalesce(p_drift, '[]'))
	WHERE id = s.id;
	UPDATE changes SET applied_at = clock_timestamp()
	WHERE server_id = s.id AND revision <= v_applied AND applied_at IS NULL;

	SELECT coalesce(array_agg(decode(x ->> 'public_key', 'base64')), '{}') INTO v_failed
	FROM jsonb_array_elements(coalesce(p_errors, '[]')) x;
	FOR e IN SELECT * FROM jsonb_array_elements(coalesce(p_errors, '[]')) LOOP
		FOR r IN SELECT * FROM routers WHERE server_id = s.id AND released_at IS NULL
			AND public_key = decode(e ->> 'public_key', 'base64')
			AND status IN ('configured', 'vps_ready') FOR UPDATE
		LOOP
			PERFORM wgf_router_move(r, 'failed', left(e ->> 'reason', 500), 'router.failed');
			n_moves := n_moves + 1;
		END LOOP;
	END LOOP;

	-- The revision holding the router's key is applied, and it did not fail.
	FOR r IN SELECT * FROM routers WHERE server_id = s.id AND status = 'configured'
		AND released_at IS NULL AND key_revision <= v_applied
		AND NOT public_key = ANY (v_failed) FOR UPDATE
	LOOP
		PERFORM wgf_router_move(r, 'vps_ready',
			format('the agent applied revision %s', v_applied), 'router.vps_ready');
		n_moves := n_moves + 1;
	END LOOP;

	FOR p IN SELECT * FROM jsonb_array_elements(coalesce(p_peers, '[]')) LOOP
		SELECT * INTO r FROM routers WHERE server_id = s.id AND released_at IS NULL
			AND public_key = decode(p ->> 'public_key', 'base64') FOR UPDATE;
		CONTINUE WHEN NOT FOUND;
		v_hs := CASE WHEN coalesce((p ->> 'last_handshake_ms')::bigint, 0) > 0
			THEN to_timestamp((p ->> 'last_handshake_ms')::bigint / 1000.0) END;
		v_fresh := v_hs IS NOT NULL AND v_hs > now() - p_handshake_window;
		UPDATE routers SET last_handshake_at = v_hs, endpoint = left(p ->> 'endpoint', 64),
			rx_bytes = coalesce((p ->> 'rx_bytes')::bigint, rx_bytes),
			tx_bytes = coalesce((p ->> 'tx_bytes')::bigint, tx_bytes)
		WHERE id = r.id;
		IF v_fresh AND r.status IN ('vps_ready', 'disconnected') THEN
			PERFORM wgf_router_move(r, 'connected',
				format('handshake at %s', v_hs), 'router.connected');
			n_moves := n_moves + 1;
		ELSIF r.status = 'connected' AND NOT v_fresh THEN
			IF r.stale_reports + 1 >= 2 THEN
				PERFORM wgf_router_move(r, 'disconnected',
					coalesce(format('last handshake at %s', v_hs), 'no handshake'),
					'router.disconnected');
				n_moves := n_moves + 1;
			ELSE
				UPDATE routers SET stale_reports = stale_reports + 1 WHERE id = r.id;
			END IF;
		ELSIF r.status = 'connected' THEN
			UPDATE routers SET stale_reports = 0 WHERE id = r.id AND stale_reports <> 0;
		END IF;
	END LOOP;

	IF jsonb_array_length(coalesce(p_drift, '[]')) > 0 THEN
		INSERT INTO audit_log (actor, action, server_id, detail)
		VALUES ('agent', 'server.drift_repaired', s.id, jsonb_build_object('found', p_drift));
	END IF;
	RETURN jsonb_build_object('server_id', s.id, 'server', s.name, 'revision', s.revision,
		'applied_revision', v_applied, 'moves', n_moves);
END
$$;

-- Propagation latency per server: commit of a change to the report that applied it.
CREATE FUNCTION wgf_apply_latency(p_server bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object(
		'samples', count(*),
		'p50_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1),
		'p99_ms', round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 1),
		'max_ms', round(max(ms)::numeric, 1))
	FROM (SELECT extract(epoch FROM applied_at - committed_at) * 1000 AS ms FROM changes
		WHERE server_id = p_server AND applied_at IS NOT NULL
		ORDER BY revision DESC LIMIT 1000) x;
$$;

-- GET /v1/status: the fleet at a glance, with propagation latency and repaired drift.
CREATE FUNCTION wgf_api_status(p_prefix text, p_hash bytea, p_online_within interval)
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
			'peers', (SELECT count(*) FROM routers r WHERE r.server_id = s.id
				AND r.released_at IS NULL AND r.public_key IS NOT NULL),
			'connected', (SELECT count(*) FROM routers r WHERE r.server_id = s.id
				AND r.status = 'connected'),
			'drift_repairs', s.drift_repairs,
			'apply_latency', wgf_apply_latency(s.id),
			'pool', jsonb_build_object('cidr', s.pool::text,
				'size', (SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id),
				'used', (SELECT coalesce(sum(used), 0) FROM server_usage u WHERE u.server_id = s.id)))
			ORDER BY s.name), '[]') FROM servers s),
		'routers', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
			(SELECT status, count(*) AS n FROM routers WHERE status <> 'deleted' GROUP BY status) x));
END
$$;
