-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0021_report_in_sets: a report writes its routers in whole statements. 0019's report
-- locked and updated each changed router with two statements of its own, about 180 us
-- a router: a report whose facts all changed (a server's first report of 50,000 peers)
-- ran 9 s, past the statement timeout, was cancelled, and came back the same, so that
-- server never reported. Now the facts are one UPDATE, and a status move of more than
-- 16 routers one UPDATE and one INSERT of audit rows for them all. The body is 0019's but for
-- the vps_ready moves and the facts. And routers are stored with room for HOT updates.

-- Half of each page of routers is left free, so that an update of facts (no indexed
-- column) is a HOT update: the new row version on the same page and no entry in any of
-- the table's indexes. With full pages each updated router wrote about 13 WAL records
-- (the row and every index): 50,000 took 4.7 s and 64 MB of WAL, against 0.36 s and
-- 6.7 MB with free space. The rows there are rewritten so that the space exists now.
ALTER TABLE routers SET (fillfactor = 50);
CLUSTER routers USING routers_pkey;

-- Moves routers (locked by the caller) to p_to, each with its reason, and audits each
-- move as wgf_router_move() does one. A few go one by one through it: the statement
-- for many cost about 1.1 ms a call against its 0.64 ms, and most reports move one
-- router (the one a change was applied for) or none.
CREATE FUNCTION wgf_routers_move(p_ids uuid[], p_reasons text[], p_to router_status,
	p_action text)
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	one routers;
BEGIN
	IF cardinality(p_ids) <= 16 THEN
		FOR one IN SELECT * FROM routers WHERE id = ANY (p_ids) ORDER BY id LOOP
			PERFORM wgf_router_move(one, p_to, p_reasons[array_position(p_ids, one.id)],
				p_action);
		END LOOP;
		RETURN;
	END IF;
	WITH old AS (
		SELECT r.id, r.status, r.tenant_id, r.server_id, r.vpn_ip FROM routers r
		WHERE r.id = ANY (p_ids)),
	moved AS (
		UPDATE routers ro SET status = p_to, status_reason = x.reason, stale_reports = 0
		FROM unnest(p_ids, p_reasons) AS x(id, reason) WHERE ro.id = x.id
		RETURNING ro.id, x.reason)
	INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
	SELECT old.tenant_id, 'agent', p_action, old.id, old.server_id, old.vpn_ip,
		jsonb_build_object('from', old.status, 'to', p_to, 'reason', moved.reason)
	FROM old JOIN moved ON moved.id = old.id
	ORDER BY old.id;
END
$$;

CREATE OR REPLACE FUNCTION wgf_agent_report(p_agent_key bytea, p_nonce bytea, p_epoch bytea,
	p_applied bigint, p_error_keys bytea, p_error_reasons text[], p_fact_keys bytea,
	p_fact_handshake_ms bigint[], p_fact_endpoints text[], p_fact_rx bigint[],
	p_fact_tx bigint[], p_wg_key bytea, p_listen_port integer, p_drift_keys bytea,
	p_drift_kinds smallint[], p_handshake_window interval)
RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
	v_epoch bytea := wgf_epoch();
	v_current boolean := p_epoch IS NOT DISTINCT FROM v_epoch;
	v_applied bigint := least(greatest(p_applied, 0), s.revision);
	n_errors integer := coalesce(length(p_error_keys), 0) / 32;
	n_facts integer := coalesce(length(p_fact_keys), 0) / 32;
	n_drift integer := coalesce(length(p_drift_keys), 0) / 32;
	v_failed bytea[] := '{}';
	r routers;
	v_ids uuid[];
	v_reasons text[];
	v_gone_ids uuid[];
	v_gone_reasons text[];
BEGIN
	-- Revisions never go back within an epoch, so an agent ahead of the database holds
	-- changes this database never made (it was restored without a new epoch): what it
	-- applied says nothing about this database's routers either.
	IF NOT v_current OR p_applied > s.revision THEN
		v_applied := 0;
		n_errors := 0;
	END IF;
	FOR i IN 0 .. n_errors - 1 LOOP
		v_failed := v_failed || substring(p_error_keys FROM i * 32 + 1 FOR 32);
	END LOOP;
	-- wgf_agent_begin() locked the server's row, so reports of one server take turns.
	-- The API locks a router before the server's row (wgf_append_change); a report
	-- holding the server's row must then never wait for a router, or the two would
	-- deadlock: routers another transaction holds are skipped (SKIP LOCKED), and the
	-- agent's next report, seconds later, brings their facts again.
	UPDATE changes SET applied_at = clock_timestamp()
	WHERE changes.server_id = s.id AND changes.revision <= v_applied AND applied_at IS NULL;

	FOR i IN 1 .. n_errors LOOP
		FOR r IN SELECT * FROM routers WHERE routers.server_id = s.id AND released_at IS NULL
			AND routers.public_key = v_failed[i] AND status IN ('configured', 'vps_ready')
			FOR UPDATE SKIP LOCKED
		LOOP
			PERFORM wgf_router_move(r, 'failed', left(coalesce(p_error_reasons[i], ''), 500),
				'router.failed');
		END LOOP;
	END LOOP;

	-- The revision holding the router's key is applied, and it did not fail.
	SELECT array_agg(ro.id) INTO v_ids FROM (SELECT routers.id FROM routers
		WHERE routers.server_id = s.id AND status = 'configured' AND released_at IS NULL
			AND key_revision <= v_applied AND NOT routers.public_key = ANY (v_failed)
		ORDER BY routers.id FOR UPDATE SKIP LOCKED) ro;
	IF v_ids IS NOT NULL THEN
		PERFORM wgf_routers_move(v_ids, array_fill(format('the agent applied revision %s',
			v_applied), ARRAY[cardinality(v_ids)]), 'vps_ready', 'router.vps_ready');
	END IF;

	-- Facts: only routers whose facts differ from what is stored, or whose status they
	-- may move, are locked and written, all in one statement; the rest (most of a
	-- periodic full report) cost one indexed read each and leave their rows alone. The
	-- status moves that follow take only the routers that move.
	WITH x AS (
		SELECT substring(p_fact_keys FROM (i - 1) * 32 + 1 FOR 32) AS k,
			CASE WHEN coalesce(p_fact_handshake_ms[i], 0) > 0
				THEN to_timestamp(p_fact_handshake_ms[i] / 1000.0) END AS hs,
			left(p_fact_endpoints[i], 64) AS ep, p_fact_rx[i] AS rx, p_fact_tx[i] AS tx
		FROM generate_series(1, n_facts) i),
	c AS (
		SELECT ro.id, x.hs, x.ep, x.rx, x.tx,
			x.hs IS NOT NULL AND x.hs > now() - p_handshake_window AS fresh
		FROM x JOIN routers ro ON ro.server_id = s.id AND ro.released_at IS NULL
			AND ro.public_key = x.k
		WHERE ro.last_handshake_at IS DISTINCT FROM x.hs
			OR ro.endpoint IS DISTINCT FROM x.ep
			OR ro.rx_bytes IS DISTINCT FROM coalesce(x.rx, ro.rx_bytes)
			OR ro.tx_bytes IS DISTINCT FROM coalesce(x.tx, ro.tx_bytes)
			OR CASE WHEN x.hs IS NOT NULL AND x.hs > now() - p_handshake_window
				THEN ro.status IN ('vps_ready', 'disconnected')
					OR ro.status = 'connected' AND ro.stale_reports <> 0
				ELSE ro.status = 'connected' END),
	l AS (
		SELECT ro.id, ro.status, ro.stale_reports FROM routers ro
		WHERE ro.id IN (SELECT c.id FROM c) ORDER BY ro.id FOR UPDATE OF ro SKIP LOCKED),
	u AS (
		UPDATE routers ro SET last_handshake_at = c.hs, endpoint = c.ep,
			rx_bytes = coalesce(c.rx, ro.rx_bytes), tx_bytes = coalesce(c.tx, ro.tx_bytes),
			stale_reports = CASE WHEN l.status <> 'connected' THEN ro.stale_reports
				WHEN c.fresh THEN 0
				WHEN l.stale_reports + 1 < 2 THEN l.stale_reports + 1
				ELSE ro.stale_reports END
		FROM c JOIN l ON l.id = c.id
		WHERE ro.id = c.id
		RETURNING ro.id, c.hs, c.fresh, l.status, l.stale_reports)
	SELECT array_agg(u.id ORDER BY u.id) FILTER (WHERE u.fresh
			AND u.status IN ('vps_ready', 'disconnected')),
		array_agg(format('handshake at %s', u.hs) ORDER BY u.id) FILTER (WHERE u.fresh
			AND u.status IN ('vps_ready', 'disconnected')),
		array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.fresh AND u.status = 'connected'
			AND u.stale_reports + 1 >= 2),
		array_agg(coalesce(format('last handshake at %s', u.hs), 'no handshake')
			ORDER BY u.id) FILTER (WHERE NOT u.fresh AND u.status = 'connected'
			AND u.stale_reports + 1 >= 2)
	INTO v_ids, v_reasons, v_gone_ids, v_gone_reasons
	FROM u;
	IF v_ids IS NOT NULL THEN
		PERFORM wgf_routers_move(v_ids, v_reasons, 'connected', 'router.connected');
	END IF;
	IF v_gone_ids IS NOT NULL THEN
		PERFORM wgf_routers_move(v_gone_ids, v_gone_reasons, 'disconnected',
			'router.disconnected');
	END IF;

	IF n_drift > 0 THEN
		INSERT INTO audit_log (actor, action, server_id, detail)
		SELECT 'agent', 'server.drift_repaired', s.id, jsonb_build_object('found',
			jsonb_agg(jsonb_build_object(
				'public_key', encode(substring(p_drift_keys FROM i * 32 + 1 FOR 32), 'base64'),
				'kind', CASE p_drift_kinds[i + 1] WHEN 1 THEN 'extra_peer'
					WHEN 2 THEN 'missing_peer' ELSE 'changed_peer' END) ORDER BY i))
		FROM generate_series(0, n_drift - 1) i;
	END IF;
	UPDATE servers SET applied_revision = greatest(applied_revision, v_applied),
		wg_public_key = coalesce(p_wg_key, wg_public_key),
		wg_listen_port = coalesce(p_listen_port, wg_listen_port),
		drift_repairs = drift_repairs + n_drift, last_seen_at = now()
	WHERE id = s.id;
	RETURN QUERY SELECT s.id, s.name, v_epoch, s.revision;
END
$$;

CALL wgf_pin_search_paths(current_schema());
