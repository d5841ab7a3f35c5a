-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0016_server_hysteresis: server.offline with the hysteresis routers have. A router goes
-- disconnected only after two stale reports in a row; a server is now announced offline
-- only after two checks found its agent unheard, the later one at least p_confirm after
-- the earlier, with no check between that heard it. One late message therefore pages
-- nobody, and announces no offline/online pair either. Coming back after an announced
-- offline is announced at the first check that hears the agent.

-- The check (of wgf_servers_watch) that first found the server unheard while it was
-- announced online; NULL while it is heard, or announced offline.
ALTER TABLE servers ADD COLUMN offline_suspected_at timestamptz;

DROP FUNCTION wgf_servers_watch(interval);

-- One check, as each delivering coordinator makes at its poll; one coordinator at a time
-- (a check that finds another running does nothing). Returns the changes it announced.
-- Only servers whose state or suspicion changes are written. The announcing step runs
-- before the suspecting one, so a suspicion is never confirmed by the check that raised it.
CREATE FUNCTION wgf_servers_watch(p_online_within interval, p_confirm interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	s record;
	v_n integer := 0;
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265079) THEN
		RETURN 0;
	END IF;
	-- Heard again (or announced offline, or deleted): no longer suspected.
	UPDATE servers SET offline_suspected_at = NULL
	WHERE offline_suspected_at IS NOT NULL AND (deleted_at IS NOT NULL
		OR NOT online_announced OR last_seen_at > now() - p_online_within);
	FOR s IN UPDATE servers SET online_announced = NOT online_announced,
			offline_suspected_at = NULL
		WHERE deleted_at IS NULL AND CASE WHEN online_announced
			THEN offline_suspected_at <= now() - p_confirm
			ELSE last_seen_at > now() - p_online_within END
		RETURNING name, online_announced, last_seen_at
	LOOP
		PERFORM wgf_webhook_emit(CASE WHEN s.online_announced THEN 'server.online'
			ELSE 'server.offline' END, NULL, jsonb_build_object('server', jsonb_build_object(
				'name', s.name, 'online', s.online_announced,
				'last_seen_at', s.last_seen_at)));
		v_n := v_n + 1;
	END LOOP;
	-- Announced online, unheard at this check: suspected from now.
	UPDATE servers SET offline_suspected_at = now()
	WHERE deleted_at IS NULL AND online_announced AND offline_suspected_at IS NULL
		AND NOT coalesce(last_seen_at > now() - p_online_within, false);
	RETURN v_n;
END
$$;

CALL wgf_pin_search_paths(current_schema());
