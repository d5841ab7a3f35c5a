-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0019_report_changed_facts: a report writes only the routers it changes. The agent's
-- periodic full report carries a fact for every peer, and 0007's report locked and
-- updated every one of those routers each time, unchanged or not: at 2,000 peers a
-- report took seconds under load while it held its server's row, and the API's writes
-- to that server's routers (which need the row for the change's revision) waited
-- behind it until they timed out. The body is 0007's but for the facts loop.

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
	f record;
	r routers;
	v_hs timestamptz;
	v_fresh boolean;
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
	FOR r IN SELECT * FROM routers WHERE routers.server_id = s.id AND status = 'configured'
		AND released_at IS NULL AND key_revision <= v_applied
		AND NOT routers.public_key = ANY (v_failed) FOR UPDATE SKIP LOCKED
	LOOP
		PERFORM wgf_router_move(r, 'vps_ready',
			format('the agent applied revision %s', v_applied), 'router.vps_ready');
	END LOOP;

	-- Facts: only routers whose facts differ from what is stored, or whose status they
	-- may move, are locked and written; the rest (most of a periodic full report) cost
	-- one indexed read each and leave their rows alone.
	FOR f IN
		SELECT ro.id, x.hs, x.ep, x.rx, x.tx
		FROM (SELECT substring(p_fact_keys FROM (i - 1) * 32 + 1 FOR 32) AS k,
				CASE WHEN coalesce(p_fact_handshake_ms[i], 0) > 0
					THEN to_timestamp(p_fact_handshake_ms[i] / 1000.0) END AS hs,
				left(p_fact_endpoints[i], 64) AS ep, p_fact_rx[i] AS rx, p_fact_tx[i] AS tx
			FROM generate_series(1, n_facts) i) x
		JOIN routers ro ON ro.server_id = s.id AND ro.released_at IS NULL
			AND ro.public_key = x.k
		WHERE ro.last_handshake_at IS DISTINCT FROM x.hs
			OR ro.endpoint IS DISTINCT FROM x.ep
			OR ro.rx_bytes IS DISTINCT FROM coalesce(x.rx, ro.rx_bytes)
			OR ro.tx_bytes IS DISTINCT FROM coalesce(x.tx, ro.tx_bytes)
			OR CASE WHEN x.hs IS NOT NULL AND x.hs > now() - p_handshake_window
				THEN ro.status IN ('vps_ready', 'disconnected')
					OR ro.status = 'connected' AND ro.stale_reports <> 0
				ELSE ro.status = 'connected' END
	LOOP
		SELECT * INTO r FROM routers WHERE id = f.id FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		v_hs := f.hs;
		v_fresh := v_hs IS NOT NULL AND v_hs > now() - p_handshake_window;
		UPDATE routers SET last_handshake_at = v_hs, endpoint = f.ep,
			rx_bytes = coalesce(f.rx, rx_bytes), tx_bytes = coalesce(f.tx, tx_bytes)
		WHERE id = r.id AND (last_handshake_at, endpoint, rx_bytes, tx_bytes)
			IS DISTINCT FROM (v_hs, f.ep, coalesce(f.rx, rx_bytes), coalesce(f.tx, tx_bytes));
		IF v_fresh AND r.status IN ('vps_ready', 'disconnected') THEN
			PERFORM wgf_router_move(r, 'connected',
				format('handshake at %s', v_hs), 'router.connected');
		ELSIF r.status = 'connected' AND NOT v_fresh THEN
			IF r.stale_reports + 1 >= 2 THEN
				PERFORM wgf_router_move(r, 'disconnected',
					coalesce(format('last handshake at %s', v_hs), 'no handshake'),
					'router.disconnected');
			ELSE
				UPDATE routers SET stale_reports = stale_reports + 1 WHERE id = r.id;
			END IF;
		ELSIF r.status = 'connected' THEN
			UPDATE routers SET stale_reports = 0 WHERE id = r.id AND stale_reports <> 0;
		END IF;
	END LOOP;

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
