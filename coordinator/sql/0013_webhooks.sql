-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0013_webhooks: signed webhooks fed from an outbox. Every router change already writes
-- its audit row in the transaction that makes it; a trigger on audit_log turns the rows
-- that matter to receivers into events, with one delivery row per webhook that wants the
-- event, in that same transaction. So nothing is announced that did not commit, and
-- nothing committed goes unannounced. The coordinator claims due deliveries (SKIP LOCKED,
-- under a lease, one per webhook at a time: in event order) and reports each attempt.

-- The event types a webhook may ask for; an empty filter means all of them.
CREATE FUNCTION wgf_webhook_event_types() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['router.reserved', 'router.configured', 'router.key_rotated',
		'router.vps_ready', 'router.connected', 'router.disconnected', 'router.failed',
		'router.expired', 'router.deleted', 'server.drift_repaired',
		'pool.threshold', 'server.online', 'server.offline']::text[];
$$;

-- tenant_id NULL: an admin's webhook, which hears every tenant's events.
CREATE TABLE webhooks (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id bigint REFERENCES tenants (id) ON DELETE CASCADE,
	url text NOT NULL CHECK (length(url) <= 2000 AND url ~ '^https?://'),
	-- The signing secret: needed in clear to sign, so kept, and shown only when made.
	secret text NOT NULL CHECK (length(secret) BETWEEN 32 AND 128),
	events text[] NOT NULL DEFAULT '{}' CHECK (events <@ wgf_webhook_event_types()),
	active boolean NOT NULL DEFAULT true,
	description text CHECK (length(description) <= 200),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, id);

-- The outbox. payload is the body without its id, which the body gets at delivery.
CREATE TABLE webhook_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	type text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
	tenant_id bigint REFERENCES tenants (id) ON DELETE CASCADE,
	payload jsonb NOT NULL
);

CREATE TABLE webhook_deliveries (
	webhook_id bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id bigint NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
	status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	-- While an attempt is in flight, the end of its lease: no replica claims it before.
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_attempt_at timestamptz,
	last_http_status integer,
	last_error text CHECK (length(last_error) <= 500),
	finished_at timestamptz,
	PRIMARY KEY (webhook_id, event_id),
	CHECK ((status = 'pending') = (finished_at IS NULL))
);
-- Each webhook's oldest pending delivery is its head: the only one that may be sent.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, event_id)
	WHERE status = 'pending';
-- For removing events (the foreign key's lookups, the prune): a hash index, which has
-- no order, so the claim's "oldest pending of this webhook" cannot be planned as a walk
-- of every event in id order (measured: a full scan for each webhook with nothing due).
CREATE INDEX webhook_deliveries_event ON webhook_deliveries USING hash (event_id);

-- One event and its deliveries. p_only: a test event for that webhook alone.
CREATE FUNCTION wgf_webhook_emit(p_type text, p_tenant bigint, p_data jsonb,
	p_only bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
	v_at timestamptz := clock_timestamp();
BEGIN
	IF p_only IS NULL AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.active
		AND (w.tenant_id IS NULL OR w.tenant_id = p_tenant)) THEN
		RETURN NULL; -- nobody listens: no outbox row
	END IF;
	INSERT INTO webhook_events (at, type, tenant_id, payload)
	VALUES (v_at, p_type, p_tenant, jsonb_build_object('type', p_type, 'at', v_at,
		'tenant', (SELECT slug FROM tenants WHERE id = p_tenant), 'data', p_data))
	RETURNING id INTO v_id;
	INSERT INTO webhook_deliveries (webhook_id, event_id, created_at)
	SELECT w.id, v_id, v_at FROM webhooks w
	WHERE CASE WHEN p_only IS NOT NULL THEN w.id = p_only
		ELSE w.active AND (w.tenant_id IS NULL OR w.tenant_id = p_tenant)
			AND (cardinality(w.events) = 0 OR p_type = ANY (w.events)) END;
	RETURN v_id;
END
$$;

-- The audit rows receivers hear of, as events. The router's row is read after the
-- change (each writer updates the router before its audit row), so data holds the new
-- state; never a key: a router's public key is left out too.
CREATE FUNCTION wgf_audit_to_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	v_type text := CASE NEW.action WHEN 'router.key_set' THEN 'router.configured'
		ELSE NEW.action END;
	v_data jsonb;
BEGIN
	IF NEW.router_id IS NOT NULL THEN
		SELECT jsonb_build_object('router', jsonb_build_object('id', r.id, 'name', r.name,
			'server', s.name, 'vpn_ip', host(r.vpn_ip), 'status', r.status,
			'status_reason', r.status_reason))
		INTO v_data FROM routers r JOIN servers s ON s.id = r.server_id
		WHERE r.id = NEW.router_id;
	ELSE
		SELECT jsonb_build_object('server', jsonb_build_object('name', s.name),
			'found', jsonb_array_length(coalesce(NEW.detail -> 'found', '[]')))
		INTO v_data FROM servers s WHERE s.id = NEW.server_id;
	END IF;
	PERFORM wgf_webhook_emit(v_type, NEW.tenant_id, coalesce(v_data, '{}'));
	RETURN NULL;
END
$$;
CREATE TRIGGER audit_log_webhooks AFTER INSERT ON audit_log FOR EACH ROW
	WHEN (NEW.action IN ('router.reserved', 'router.key_set', 'router.key_rotated',
		'router.vps_ready', 'router.connected', 'router.disconnected', 'router.failed',
		'router.expired', 'router.deleted', 'server.drift_repaired'))
	EXECUTE FUNCTION wgf_audit_to_webhooks();

-- pool.threshold: a server's pool crossing 80 % or 90 % use, up or down. The level last
-- announced is kept per server with the pool's size (counted once: a pool never
-- changes). A reservation reads it without a lock and writes it only when the level
-- changes, so reservations on one server keep their separate usage shards, and of two
-- that cross at once the second finds the level already moved and announces nothing.
CREATE TABLE webhook_pool_levels (
	server_id bigint PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
	pool_size integer NOT NULL CHECK (pool_size >= 0),
	level smallint NOT NULL DEFAULT 0 CHECK (level IN (0, 80, 90))
);

CREATE FUNCTION wgf_pool_level_watch() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	l webhook_pool_levels;
	v_used bigint;
	v_level smallint;
BEGIN
	SELECT * INTO l FROM webhook_pool_levels WHERE server_id = NEW.server_id;
	IF NOT FOUND THEN
		INSERT INTO webhook_pool_levels (server_id, pool_size)
		SELECT NEW.server_id, count(*) FROM pool_addresses WHERE server_id = NEW.server_id
		ON CONFLICT (server_id) DO NOTHING;
		SELECT * INTO l FROM webhook_pool_levels WHERE server_id = NEW.server_id;
	END IF;
	SELECT coalesce(sum(used), 0) INTO v_used FROM server_usage WHERE server_id = NEW.server_id;
	v_level := CASE WHEN l.pool_size > 0 AND v_used * 100 >= l.pool_size * 90 THEN 90
		WHEN l.pool_size > 0 AND v_used * 100 >= l.pool_size * 80 THEN 80 ELSE 0 END;
	IF v_level = l.level THEN
		RETURN NULL;
	END IF;
	UPDATE webhook_pool_levels SET level = v_level
	WHERE server_id = NEW.server_id AND level <> v_level;
	IF FOUND THEN
		PERFORM wgf_webhook_emit('pool.threshold', NULL, jsonb_build_object(
			'server', jsonb_build_object('name', (SELECT name FROM servers
				WHERE id = NEW.server_id)),
			'level', v_level, 'previous_level', l.level, 'used', v_used,
			'size', l.pool_size));
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER server_usage_pool_level AFTER UPDATE OF used ON server_usage FOR EACH ROW
	WHEN (NEW.used IS DISTINCT FROM OLD.used) EXECUTE FUNCTION wgf_pool_level_watch();

-- server.online and server.offline: the state last announced is kept on the server. A
-- delivering coordinator calls wgf_servers_watch() with its [api] server_online_within
-- at each poll; a server is online while its agent was heard from within it (as
-- GET /v1/status counts it), and each change of that is announced once. One
-- coordinator at a time; only servers whose state changed are written.
ALTER TABLE servers ADD COLUMN online_announced boolean NOT NULL DEFAULT false;

CREATE FUNCTION wgf_servers_watch(p_online_within interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	s record;
	v_n integer := 0;
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265079) THEN
		RETURN 0;
	END IF;
	FOR s IN UPDATE servers SET online_announced = NOT online_announced
		WHERE deleted_at IS NULL AND online_announced
			<> coalesce(last_seen_at > now() - p_online_within, false)
		RETURNING name, online_announced, last_seen_at
	LOOP
		PERFORM wgf_webhook_emit(CASE WHEN s.online_announced THEN 'server.online'
			ELSE 'server.offline' END, NULL, jsonb_build_object('server', jsonb_build_object(
				'name', s.name, 'online', s.online_announced,
				'last_seen_at', s.last_seen_at)));
		v_n := v_n + 1;
	END LOOP;
	RETURN v_n;
END
$$;

-- A webhook as the API shows it: never its secret.
CREATE FUNCTION wgf_webhook_json(w webhooks) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', w.id,
		'tenant', (SELECT slug FROM tenants WHERE id = w.tenant_id),
		'url', w.url, 'events', to_jsonb(w.events), 'active', w.active,
		'description', w.description, 'created_at', w.created_at,
		'updated_at', w.updated_at);
$$;

-- The caller's webhook (an admin's key reaches every webhook), locked, or 404.
CREATE FUNCTION wgf_webhook_for_update(c wgf_caller, p_id bigint) RETURNS webhooks
LANGUAGE plpgsql AS $$
DECLARE
	w webhooks;
BEGIN
	SELECT * INTO w FROM webhooks WHERE id = p_id
		AND (c.scope = 'admin' OR tenant_id = c.tenant_id) FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'webhook_not_found', format('No webhook %s.', p_id));
	END IF;
	RETURN w;
END
$$;

-- An event filter names only known types: a 400 naming the first unknown one.
CREATE FUNCTION wgf_webhook_check_events(p_events text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	v_bad text := (SELECT e FROM unnest(p_events) e
		WHERE NOT e = ANY (wgf_webhook_event_types()) LIMIT 1);
BEGIN
	IF v_bad IS NOT NULL THEN
		PERFORM wgf_raise('WG400', 'invalid_request', format(
			'events: ''%s'' is not an event type (%s).', v_bad,
			array_to_string(wgf_webhook_event_types(), ', ')));
	END IF;
END
$$;

-- POST /v1/webhooks: an admin's key makes a fleet-wide webhook, a tenant's key one for
-- its tenant. The coordinator makes the secret; the reply shows it this once.
CREATE FUNCTION wgf_api_create_webhook(p_prefix text, p_hash bytea, p_url text,
	p_events text[], p_description text, p_secret text, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	w webhooks;
BEGIN
	PERFORM wgf_webhook_check_events(p_events);
	INSERT INTO webhooks (tenant_id, url, events, description, secret)
	VALUES (c.tenant_id, p_url, coalesce(p_events, '{}'), p_description, p_secret)
	RETURNING * INTO w;
	PERFORM wgf_audit(c, 'api', 'webhook.created', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('webhook_id', w.id, 'url', w.url));
	RETURN wgf_webhook_json(w);
END
$$;

-- GET /v1/webhooks: a tenant's own, or every one for an admin.
CREATE FUNCTION wgf_api_list_webhooks(p_prefix text, p_hash bytea)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
BEGIN
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(wgf_webhook_json(w)
		ORDER BY w.id), '[]') FROM webhooks w
		WHERE c.scope = 'admin' OR w.tenant_id = c.tenant_id));
END
$$;

-- PATCH /v1/webhooks/{id}: NULL leaves a field as it is.
CREATE FUNCTION wgf_api_update_webhook(p_prefix text, p_hash bytea, p_id bigint, p_url text,
	p_events text[], p_active boolean, p_description text, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	w webhooks := wgf_webhook_for_update(c, p_id);
BEGIN
	PERFORM wgf_webhook_check_events(p_events);
	UPDATE webhooks SET url = coalesce(p_url, url), events = coalesce(p_events, events),
		active = coalesce(p_active, active), description = coalesce(p_description, description),
		updated_at = now()
	WHERE id = w.id RETURNING * INTO w;
	PERFORM wgf_audit(c, 'api', 'webhook.updated', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('webhook_id', w.id, 'url', w.url, 'active', w.active));
	RETURN wgf_webhook_json(w);
END
$$;

-- DELETE /v1/webhooks/{id}: its pending deliveries go with it.
CREATE FUNCTION wgf_api_delete_webhook(p_prefix text, p_hash bytea, p_id bigint,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	w webhooks := wgf_webhook_for_update(c, p_id);
BEGIN
	DELETE FROM webhooks WHERE id = w.id;
	PERFORM wgf_audit(c, 'api', 'webhook.deleted', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('webhook_id', w.id, 'url', w.url));
	RETURN '{}';
END
$$;

-- POST /v1/webhooks/{id}/rotate-secret: the old secret stops at once.
CREATE FUNCTION wgf_api_rotate_webhook_secret(p_prefix text, p_hash bytea, p_id bigint,
	p_secret text, p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	w webhooks := wgf_webhook_for_update(c, p_id);
BEGIN
	UPDATE webhooks SET secret = p_secret, updated_at = now() WHERE id = w.id RETURNING * INTO w;
	PERFORM wgf_audit(c, 'api', 'webhook.secret_rotated', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('webhook_id', w.id));
	RETURN wgf_webhook_json(w);
END
$$;

-- POST /v1/webhooks/{id}/test: a webhook.test event for this webhook alone, queued like
-- any other (so it waits behind the webhook's earlier events).
CREATE FUNCTION wgf_api_test_webhook(p_prefix text, p_hash bytea, p_id bigint,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	w webhooks := wgf_webhook_for_update(c, p_id);
BEGIN
	RETURN jsonb_build_object('event_id', wgf_webhook_emit('webhook.test', w.tenant_id,
		jsonb_build_object('webhook', w.id, 'request_id', p_request_id), w.id));
END
$$;

-- GET /v1/webhooks/{id}/deliveries: the delivery log, oldest first, after an event id.
CREATE FUNCTION wgf_api_webhook_deliveries(p_prefix text, p_hash bytea, p_id bigint,
	p_status text, p_after bigint, p_limit integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
BEGIN
	IF NOT EXISTS (SELECT 1 FROM webhooks WHERE id = p_id
		AND (c.scope = 'admin' OR tenant_id = c.tenant_id)) THEN
		PERFORM wgf_raise('WG404', 'webhook_not_found', format('No webhook %s.', p_id));
	END IF;
	RETURN jsonb_build_object('items', (SELECT coalesce(jsonb_agg(jsonb_build_object(
			'event_id', d.event_id, 'type', e.type, 'status', d.status,
			'attempts', d.attempts, 'created_at', d.created_at,
			'next_attempt_at', CASE WHEN d.status = 'pending' THEN d.next_attempt_at END,
			'last_attempt_at', d.last_attempt_at, 'last_http_status', d.last_http_status,
			'last_error', d.last_error, 'finished_at', d.finished_at)
			ORDER BY d.event_id), '[]')
		FROM (SELECT * FROM webhook_deliveries WHERE webhook_id = p_id
			AND (p_status IS NULL OR status = p_status)
			AND (p_after IS NULL OR event_id > p_after)
			ORDER BY event_id LIMIT p_limit) d
		JOIN webhook_events e ON e.id = d.event_id));
END
$$;

-- Up to p_limit due heads (each webhook's oldest pending delivery) of active webhooks,
-- leased for p_lease: another replica skips them while they are locked and, once the
-- lease is written, until it ends. The body is the exact text to sign and send.
CREATE FUNCTION wgf_webhook_claim(p_limit integer, p_lease interval)
RETURNS TABLE (webhook_id bigint, event_id bigint, attempt integer, url text, secret text,
	body text)
LANGUAGE sql AS $$
	WITH heads AS (
		-- One probe of the pending index per active webhook, however long its backlog
		-- (ordered as the index is, so that the planner uses it).
		SELECT h.webhook_id, h.event_id FROM webhooks w
		CROSS JOIN LATERAL (SELECT d.webhook_id, d.event_id FROM webhook_deliveries d
			WHERE d.webhook_id = w.id AND d.status = 'pending'
			ORDER BY d.webhook_id, d.event_id LIMIT 1) h
		WHERE w.active
	), due AS (
		SELECT d.webhook_id, d.event_id FROM webhook_deliveries d
		JOIN heads h ON h.webhook_id = d.webhook_id AND h.event_id = d.event_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= now()
		ORDER BY d.next_attempt_at LIMIT p_limit
		FOR UPDATE OF d SKIP LOCKED
	)
	UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),
		next_attempt_at = now() + p_lease
	FROM due, webhooks w, webhook_events e
	WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id
	  AND w.id = d.webhook_id AND e.id = d.event_id
	RETURNING d.webhook_id, d.event_id, d.attempts, w.url, w.secret,
		(jsonb_build_object('id', e.id) || e.payload)::text;
$$;

-- An attempt's outcome: p_error NULL is success. A failure is retried after p_retry_in
-- unless that is past p_retry_for from the delivery's start: then it is dead. An
-- outcome for a claim that is no longer the latest (its lease ran out and another
-- attempt began) changes nothing. Returns the delivery's status, or NULL.
CREATE FUNCTION wgf_webhook_done(p_webhook bigint, p_event bigint, p_attempt integer,
	p_http_status integer, p_error text, p_retry_in interval, p_retry_for interval)
RETURNS text LANGUAGE sql AS $$
	UPDATE webhook_deliveries SET last_http_status = p_http_status,
		last_error = left(p_error, 500),
		status = CASE WHEN p_error IS NULL THEN 'delivered'
			WHEN now() + p_retry_in > created_at + p_retry_for THEN 'dead'
			ELSE 'pending' END,
		finished_at = CASE WHEN p_error IS NULL
			OR now() + p_retry_in > created_at + p_retry_for THEN now() END,
		next_attempt_at = now() + p_retry_in
	WHERE webhook_id = p_webhook AND event_id = p_event AND attempts = p_attempt
	  AND status = 'pending'
	RETURNING status;
$$;

-- The delivery log is kept for p_keep after a delivery ends; then it goes, and so does
-- an event no delivery needs any more. At most p_batch of each per call; one
-- coordinator at a time. Returns the deliveries removed.
CREATE FUNCTION wgf_webhook_prune(p_keep interval, p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_n integer;
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265078) THEN
		RETURN 0;
	END IF;
	DELETE FROM webhook_deliveries d USING (SELECT webhook_id, event_id
		FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < now() - p_keep
		LIMIT p_batch) x
	WHERE d.webhook_id = x.webhook_id AND d.event_id = x.event_id;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e
		WHERE e.at < now() - p_keep AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
			WHERE d.event_id = e.id) LIMIT p_batch);
	RETURN v_n;
END
$$;
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
	WHERE status <> 'pending';
CREATE INDEX webhook_events_at ON webhook_events (at);

CALL wgf_pin_search_paths(current_schema());
