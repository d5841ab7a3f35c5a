-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0010_agent_key_rotation: a server may have a second agent key while its agent's
-- signing key is rotated. The steps: register the new key as next_agent_key (both keys
-- are accepted from then on), restart the agent with its new key, then make the new
-- key the agent_key (PATCH agent_key = the next key), which retires the old one.

ALTER TABLE servers ADD COLUMN next_agent_key bytea
	CHECK (next_agent_key IS NULL
		OR (length(next_agent_key) = 32 AND next_agent_key IS DISTINCT FROM agent_key)),
	-- A deleted server has no next key: its keys may be registered again (as 0004's
	-- deletion frees agent_key).
	ADD CHECK (deleted_at IS NULL OR next_agent_key IS NULL);
CREATE UNIQUE INDEX servers_next_agent_key ON servers (next_agent_key)
	WHERE deleted_at IS NULL;

CREATE FUNCTION wgf_servers_drop_next_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.next_agent_key := NULL;
	RETURN NEW;
END
$$;
CREATE TRIGGER servers_drop_next_key BEFORE UPDATE OF deleted_at ON servers
	FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL) EXECUTE FUNCTION wgf_servers_drop_next_key();

-- No key may belong to two servers, in either column: the channel finds a server by
-- the key a message is signed with. Concurrent registrations are serialised.
CREATE FUNCTION wgf_servers_keys_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(2003265077);
	IF EXISTS (SELECT 1 FROM servers s WHERE s.id <> NEW.id AND s.deleted_at IS NULL
		AND (s.agent_key IN (NEW.agent_key, NEW.next_agent_key)
			OR s.next_agent_key IN (NEW.agent_key, NEW.next_agent_key))) THEN
		PERFORM wgf_raise('WG409', 'server_exists', 'Another server has this agent key.');
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER servers_keys_unique BEFORE INSERT OR UPDATE OF agent_key, next_agent_key
	ON servers FOR EACH ROW WHEN (NEW.deleted_at IS NULL)
	EXECUTE FUNCTION wgf_servers_keys_unique();

-- The channel's registry reloads when a server's next key changes too.
DROP TRIGGER servers_registry_upd ON servers;
CREATE TRIGGER servers_registry_upd AFTER UPDATE ON servers
	FOR EACH ROW WHEN (OLD.agent_key IS DISTINCT FROM NEW.agent_key
		OR OLD.next_agent_key IS DISTINCT FROM NEW.next_agent_key
		OR OLD.name IS DISTINCT FROM NEW.name
		OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
	EXECUTE FUNCTION wgf_servers_notify();

-- As in 0007, a message signed with either key.
CREATE OR REPLACE FUNCTION wgf_agent_identify(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers;
	v_keep interval := coalesce(nullif(current_setting('wgfleet.nonce_keep', true), '')::interval,
		interval '2 hours');
BEGIN
	SELECT * INTO s FROM servers
	WHERE (agent_key = p_agent_key OR next_agent_key = p_agent_key) AND deleted_at IS NULL;
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

-- As in 0007, with the next key (NULL when there is none).
DROP FUNCTION wgf_channel_registry();
CREATE FUNCTION wgf_channel_registry()
RETURNS TABLE (server_id bigint, name text, agent_key bytea, pool_size bigint, pool cidr,
	revision bigint, next_agent_key bytea)
LANGUAGE sql STABLE AS $$
	SELECT s.id, s.name, s.agent_key,
		(SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id), s.pool, s.revision,
		s.next_agent_key
	FROM servers s WHERE s.agent_key IS NOT NULL AND s.deleted_at IS NULL ORDER BY s.id;
$$;

CREATE OR REPLACE FUNCTION wgf_server_json(s servers) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('name', s.name, 'endpoint', s.endpoint, 'interface', s.interface,
		'pool', s.pool::text, 'gateway', host(s.gateway),
		'agent_key', encode(s.agent_key, 'base64'),
		'next_agent_key', encode(s.next_agent_key, 'base64'),
		'public_key', encode(s.wg_public_key, 'base64'), 'listen_port', s.wg_listen_port,
		'revision', s.revision, 'applied_revision', s.applied_revision,
		'cache_error', s.cache_error,
		'last_seen_at', s.last_seen_at, 'created_at', s.created_at);
$$;

-- PATCH /v1/servers/{name}, as in 0004, with the next agent key: p_next_agent_key
-- registers one, p_clear_next drops it, and an agent_key equal to the next key
-- promotes it (the old key is refused from then on).
DROP FUNCTION wgf_api_update_server(text, bytea, text, text, text, bytea, bytea, integer, text);
CREATE FUNCTION wgf_api_update_server(p_prefix text, p_hash bytea, p_name text,
	p_endpoint text, p_interface text, p_agent_key bytea, p_public_key bytea,
	p_listen_port integer, p_next_agent_key bytea, p_clear_next boolean, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	o servers;
	s servers;
BEGIN
	SELECT * INTO o FROM servers WHERE name = p_name AND deleted_at IS NULL FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'server_not_found', format('No server is named ''%s''.', p_name));
	END IF;
	IF p_next_agent_key IS NOT NULL AND p_next_agent_key = coalesce(p_agent_key, o.agent_key) THEN
		PERFORM wgf_raise('WG400', 'invalid_request', 'next_agent_key: the server''s agent key already.');
	END IF;
	BEGIN
		UPDATE servers SET endpoint = coalesce(p_endpoint, endpoint),
			interface = coalesce(p_interface, interface),
			agent_key = coalesce(p_agent_key, agent_key),
			next_agent_key = CASE
				WHEN p_clear_next OR p_agent_key = next_agent_key THEN NULL
				ELSE coalesce(p_next_agent_key, next_agent_key) END,
			wg_public_key = coalesce(p_public_key, wg_public_key),
			wg_listen_port = coalesce(p_listen_port, wg_listen_port)
		WHERE id = o.id RETURNING * INTO s;
	EXCEPTION
		WHEN unique_violation THEN
			PERFORM wgf_raise('WG409', 'server_exists', 'Another server has this agent key.');
		WHEN check_violation THEN
			PERFORM wgf_raise('WG400', 'invalid_request', 'endpoint: 3-261 characters; interface: at most 15 characters.');
	END;
	PERFORM wgf_audit(c, 'api', 'server.updated', NULL, s.id, NULL, p_request_id,
		jsonb_strip_nulls(jsonb_build_object(
			'endpoint', nullif(s.endpoint, o.endpoint),
			'interface', nullif(s.interface, o.interface),
			'agent_key', encode(nullif(s.agent_key, o.agent_key), 'base64'),
			'next_agent_key', CASE WHEN s.next_agent_key IS DISTINCT FROM o.next_agent_key
				THEN coalesce(encode(s.next_agent_key, 'base64'), 'none') END,
			'public_key', encode(nullif(s.wg_public_key, o.wg_public_key), 'base64'),
			'listen_port', nullif(s.wg_listen_port, o.wg_listen_port))));
	RETURN wgf_server_json(s);
END
$$;

CALL wgf_pin_search_paths(current_schema());
