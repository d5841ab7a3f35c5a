-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0006_channel_admission: what the channel needs to refuse strangers without asking the
-- database each time. The coordinator keeps the registered agent keys in memory, loaded
-- with wgf_channel_registry() and reloaded when wgf_servers is notified; and nonces are
-- kept as long as the allowed clock skew needs, not a fixed 10 minutes.

-- Every agent key that may talk to the channel, with what the channel bounds by it: a
-- server's peers are addresses of its pool, so a Report can name at most that many.
CREATE FUNCTION wgf_channel_registry()
RETURNS TABLE (server_id bigint, name text, agent_key bytea, pool_size bigint)
LANGUAGE sql STABLE AS $$
	SELECT s.id, s.name, s.agent_key,
		(SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id)
	FROM servers s WHERE s.agent_key IS NOT NULL AND s.deleted_at IS NULL;
$$;

-- Tells each coordinator to reload its registry. Only changes to what the registry
-- holds notify: a revision bump (every router change) does not.
CREATE FUNCTION wgf_servers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('wgf_servers', '');
	RETURN NULL;
END
$$;

CREATE TRIGGER servers_registry_ins_del AFTER INSERT OR DELETE ON servers
	FOR EACH STATEMENT EXECUTE FUNCTION wgf_servers_notify();
CREATE TRIGGER servers_registry_upd AFTER UPDATE ON servers
	FOR EACH ROW WHEN (OLD.agent_key IS DISTINCT FROM NEW.agent_key
		OR OLD.name IS DISTINCT FROM NEW.name
		OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
	EXECUTE FUNCTION wgf_servers_notify();

-- As in 0004, but a nonce is kept for wgfleet.nonce_keep (the channel's connections set
-- it to twice the allowed clock skew: an envelope may arrive up to the skew before or
-- after its timestamp, and is refused as stale only once the skew has passed again).
-- Without the setting, the longest skew the coordinator allows (1 h) is assumed.
CREATE OR REPLACE FUNCTION wgf_agent_begin(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers;
	v_keep interval := coalesce(nullif(current_setting('wgfleet.nonce_keep', true), '')::interval,
		interval '2 hours');
BEGIN
	UPDATE servers SET last_seen_at = now()
	WHERE agent_key = p_agent_key AND deleted_at IS NULL RETURNING * INTO s;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG401', 'unknown_sender', 'No server is registered with this agent key.');
	END IF;
	INSERT INTO agent_nonces (server_id, nonce) VALUES (s.id, p_nonce) ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG409', 'replay', 'This message was seen before.');
	END IF;
	IF random() < 0.01 THEN
		DELETE FROM agent_nonces WHERE seen_at < now() - v_keep;
	END IF;
	RETURN s;
END
$$;

-- As at the end of 0004: every function of this schema runs with a pinned search_path
-- (CREATE OR REPLACE dropped wgf_agent_begin's; the new functions have none yet).
CALL wgf_pin_search_paths(current_schema());
