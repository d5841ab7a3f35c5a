-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0023_report_plans_without_stats: an agent's report joins no two row sets that have
-- no index between them, so no plan of it can grow with the square of its routers.
-- Its facts statement joined the routers it had picked (a CTE) with the routers it
-- had locked (another CTE) inside its UPDATE, and wgf_routers_move joined the routers
-- before a move with the routers it moved; when the table's statistics were older than
-- its rows (a bulk import, and the agent's first report before autovacuum analyzed the
-- table), PostgreSQL estimated one row for each and nested the two scans: 10,000 facts
-- took 43.9 s instead of 0.3 s, every report was cancelled at the statement timeout
-- while it held the server's row, and the API's key changes on that server timed out
-- behind it. Each now locks as it reads and updates from that one set, joined to the
-- table by its primary key. The bodies are 0022's and 0021's otherwise.

-- As in 0022, with the facts' routers locked as they are picked.
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
	-- may move, are locked (as they are found) and written, all in one statement; the rest (most of a
	-- periodic full report) cost one indexed read each and leave their rows alone. The
	-- status moves that follow take only the routers that move. A report without facts
	-- skips the statement (it would find nothing, and it is planned at every call).
	IF n_facts > 0 THEN
		WITH x AS (
			SELECT substring(p_fact_keys FROM (i - 1) * 32 + 1 FOR 32) AS k,
				CASE WHEN coalesce(p_fact_handshake_ms[i], 0) > 0
					THEN to_timestamp(p_fact_handshake_ms[i] / 1000.0) END AS hs,
				left(p_fact_endpoints[i], 64) AS ep, p_fact_rx[i] AS rx, p_fact_tx[i] AS tx
			FROM generate_series(1, n_facts) i),
		c AS (
			SELECT ro.id, ro.status, ro.stale_reports, x.hs, x.ep, x.rx, x.tx,
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
					ELSE ro.status = 'connected' END
			ORDER BY ro.id FOR UPDATE OF ro SKIP LOCKED),
		u AS (
			UPDATE routers ro SET last_handshake_at = c.hs, endpoint = c.ep,
				rx_bytes = coalesce(c.rx, ro.rx_bytes), tx_bytes = coalesce(c.tx, ro.tx_bytes),
				stale_reports = CASE WHEN c.status <> 'connected' THEN ro.stale_reports
					WHEN c.fresh THEN 0
					WHEN c.stale_reports + 1 < 2 THEN c.stale_reports + 1
					ELSE ro.stale_reports END
			FROM c
			WHERE ro.id = c.id
			RETURNING ro.id, c.hs, c.fresh, c.status, c.stale_reports)
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

-- As in 0021, with the old status read in the UPDATE itself.
CREATE OR REPLACE FUNCTION wgf_routers_move(p_ids uuid[], p_reasons text[], p_to router_status,
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
	-- The routers read in FROM (o) are the statement's snapshot: their status before it.
	WITH moved AS (
		UPDATE routers ro SET status = p_to, status_reason = x.reason, stale_reports = 0
		FROM unnest(p_ids, p_reasons) AS x(id, reason) JOIN routers o ON o.id = x.id
		WHERE ro.id = x.id
		RETURNING ro.id, o.status, ro.tenant_id, ro.server_id, ro.vpn_ip, x.reason)
	INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
	SELECT m.tenant_id, 'agent', p_action, m.id, m.server_id, m.vpn_ip,
		jsonb_build_object('from', m.status, 'to', p_to, 'reason', m.reason)
	FROM moved m
	ORDER BY m.id;
END
$$;

CALL wgf_pin_search_paths(current_schema());
