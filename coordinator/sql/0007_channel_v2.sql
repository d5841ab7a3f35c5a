-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0007_channel_v2: the channel's contract with the database in typed rows, epochs, and
-- snapshots in pages.
--
--   * The agent functions take and return bytea, cidr, bigint and arrays of them: no
--     JSON and no base64 between the coordinator and SQL on this path. Each returns a
--     table whose columns the coordinator checks by name and type (channel_db.c), so a
--     renamed column is an error, never a silent 0.
--   * A peer's allowed IP and keepalive are stored once, on the router, and read by the
--     snapshot and the delta path alike (wgf_peer_ip, routers.persistent_keepalive).
--   * Revisions count within an epoch (wgf_epochs): the agent's revision of another
--     epoch gets a snapshot, and its report of another epoch applies nothing.
--   * A snapshot is read in pages in public-key order, the last page with the changes
--     made since the first (proto/wgfleet.proto, PAGED SNAPSHOTS).

-- ---- epochs ----

-- The database's generations. The newest row is the current epoch. A new one is made
-- when the database is created (here), when it finds itself in another cluster or on
-- another timeline than its epoch was made on (restored into a new cluster, recovered
-- to a point in time, or a standby promoted after a failover: see wgf_epoch()), and
-- when an operator says so (`wgfleet-coordinator new-epoch`, after restoring a backup
-- into the same cluster, which nothing else can tell). The revisions of such a database
-- may repeat numbers that agents already applied with other contents.
CREATE TABLE wgf_epochs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	epoch bytea NOT NULL UNIQUE CHECK (length(epoch) = 16),
	started_at timestamptz NOT NULL DEFAULT now(),
	reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
	-- Where it was made: the cluster (pg_control_system()) and its WAL timeline.
	system_identifier bigint NOT NULL,
	timeline bigint NOT NULL
);

-- The cluster's identifier and current timeline (from the name of the WAL file being
-- written: its first 8 hex digits). A few microseconds.
CREATE FUNCTION wgf_cluster_generation(OUT system_identifier bigint, OUT timeline bigint)
LANGUAGE sql VOLATILE AS $$
	SELECT (pg_control_system()).system_identifier,
		('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint;
$$;

-- Starts a new epoch and tells every coordinator (which answers its parked long polls,
-- so each agent asks again and gets a snapshot of the new epoch). Reports of the old
-- epoch no longer count, so applied revisions start again from what agents report.
CREATE FUNCTION wgf_new_epoch(p_reason text) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
	v_epoch bytea := decode(replace(gen_random_uuid()::text, '-', ''), 'hex');
	g record := wgf_cluster_generation();
BEGIN
	INSERT INTO wgf_epochs (epoch, reason, system_identifier, timeline)
	VALUES (v_epoch, p_reason, g.system_identifier, g.timeline);
	UPDATE servers SET applied_revision = 0 WHERE applied_revision <> 0;
	PERFORM pg_notify('wgf_epoch', encode(v_epoch, 'hex'));
	RETURN v_epoch;
END
$$;

-- The current epoch; a new one first when the cluster or timeline is not the one the
-- newest epoch was made on (one caller makes it, under an advisory lock; the others
-- then read it).
CREATE FUNCTION wgf_epoch() RETURNS bytea LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	e wgf_epochs;
	g record := wgf_cluster_generation();
BEGIN
	SELECT * INTO e FROM wgf_epochs ORDER BY id DESC LIMIT 1;
	IF e.system_identifier = g.system_identifier AND e.timeline = g.timeline THEN
		RETURN e.epoch;
	END IF;
	PERFORM pg_advisory_xact_lock(2003265075);
	SELECT * INTO e FROM wgf_epochs ORDER BY id DESC LIMIT 1;
	IF e.system_identifier = g.system_identifier AND e.timeline = g.timeline THEN
		RETURN e.epoch;
	END IF;
	RETURN wgf_new_epoch(format('cluster %s timeline %s (was cluster %s timeline %s)',
		g.system_identifier, g.timeline, e.system_identifier, e.timeline));
END
$$;

SELECT wgf_new_epoch('database created');

-- ---- a peer's settings, stored once ----

-- The allowed IP of the router with VPN address p_ip: that address alone.
CREATE FUNCTION wgf_peer_ip(p_ip inet) RETURNS cidr LANGUAGE sql IMMUTABLE AS $$
	SELECT set_masklen(p_ip, CASE WHEN family(p_ip) = 4 THEN 32 ELSE 128 END)::cidr;
$$;

ALTER TABLE routers ADD COLUMN persistent_keepalive integer
	CHECK (persistent_keepalive BETWEEN 0 AND 65535);
UPDATE routers r SET persistent_keepalive = c.persistent_keepalive
FROM (SELECT DISTINCT ON (router_id) router_id, persistent_keepalive FROM changes
	WHERE op = 'upsert' ORDER BY router_id, revision DESC) c
WHERE c.router_id = r.id;
UPDATE routers SET persistent_keepalive = 25
WHERE persistent_keepalive IS NULL AND public_key IS NOT NULL;

ALTER TABLE changes DROP COLUMN allowed_ips, DROP COLUMN persistent_keepalive;

-- As in 0002, but the keepalive goes on the router (where both sync paths read it)
-- and the change row names only the router and the key.
CREATE OR REPLACE FUNCTION wgf_append_change(p_server bigint, p_op text, p_router uuid,
	p_key bytea, p_ip inet, p_keepalive integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_rev bigint;
BEGIN
	UPDATE servers SET revision = revision + 1 WHERE id = p_server RETURNING revision INTO v_rev;
	IF p_op = 'upsert' THEN
		UPDATE routers SET persistent_keepalive = p_keepalive WHERE id = p_router;
	END IF;
	INSERT INTO changes (server_id, revision, op, router_id, public_key)
	VALUES (p_server, v_rev, p_op, p_router, p_key);
	PERFORM pg_notify('wgf_changes', p_server || ':' || v_rev);
	RETURN v_rev;
END
$$;

-- ---- the agent functions, typed ----

DROP FUNCTION wgf_agent_wait(bytea, bytea);
DROP FUNCTION wgf_agent_sync(bytea, bytea, bigint, boolean, integer, integer);
DROP FUNCTION wgf_agent_report(bytea, bytea, bigint, jsonb, jsonb, bytea, integer, jsonb, interval);
DROP FUNCTION wgf_peer_json(bytea, inet, integer, uuid);

-- Who sent an agent message, and its nonce remembered (as 0006's wgf_agent_begin(),
-- which now calls this), without locking the server's row.
CREATE FUNCTION wgf_agent_identify(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers;
	v_keep interval := coalesce(nullif(current_setting('wgfleet.nonce_keep', true), '')::interval,
		interval '2 hours');
BEGIN
	SELECT * INTO s FROM servers WHERE agent_key = p_agent_key AND deleted_at IS NULL;
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

-- The server's row locked (and marked seen) for a wait, a sync or a report: a sync's
-- reads of the server's peers must all see it at one revision (see wgf_agent_sync()),
-- and reports of one server take turns.
CREATE OR REPLACE FUNCTION wgf_agent_begin(p_agent_key bytea, p_nonce bytea) RETURNS servers
LANGUAGE plpgsql AS $$
DECLARE
	s servers := wgf_agent_identify(p_agent_key, p_nonce);
BEGIN
	UPDATE servers SET last_seen_at = now() WHERE id = s.id RETURNING * INTO s;
	RETURN s;
END
$$;

-- An agent's long poll (a Hint): who it is, and its server's newest revision and epoch.
CREATE FUNCTION wgf_agent_wait(p_agent_key bytea, p_nonce bytea)
RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
BEGIN
	RETURN QUERY SELECT s.id, s.name, wgf_epoch(), s.revision;
END
$$;

-- A server's changes after revision p_after, in order, as the agent is sent them: an
-- upsert with the router's allowed IP and keepalive, a removal by key alone.
CREATE FUNCTION wgf_changes_after(p_server bigint, p_after bigint)
RETURNS TABLE (op smallint, change_revision bigint, public_key bytea, allowed_ip cidr,
	keepalive integer)
LANGUAGE sql STABLE AS $$
	SELECT CASE c.op WHEN 'upsert' THEN 1 ELSE 2 END::smallint, c.revision, c.public_key,
		CASE WHEN c.op = 'upsert' THEN wgf_peer_ip(r.vpn_ip) END,
		CASE WHEN c.op = 'upsert' THEN coalesce(r.persistent_keepalive, 0) END
	FROM changes c JOIN routers r ON r.id = c.router_id
	WHERE c.server_id = p_server AND c.revision > p_after ORDER BY c.revision;
$$;

-- An agent's SyncRequest. The first row is the reply's header (server_id to routable;
-- the rest NULL); then one row per peer of a snapshot page (op NULL), then one per
-- change (op 1 upsert, 2 remove; allowed_ip and keepalive NULL for a removal).
--
-- wgf_agent_begin() has locked the server's row, and every change to the server's
-- peers updates that row first (wgf_append_change), so what the statements below read
-- of this server is its state at s.revision, however many snapshots they take.
--
-- Deltas when the agent's epoch is current and the change log still holds what comes
-- after its revision (0005); else the first page of a snapshot, read at s.revision. A
-- request for a next page (p_page_base > 0) gets the peers after p_page_after; its last
-- page brings the changes after p_page_base, or, when those are gone or the epoch
-- changed, the answer is a first page again.
CREATE FUNCTION wgf_agent_sync(p_agent_key bytea, p_nonce bytea, p_epoch bytea,
	p_since bigint, p_want_snapshot boolean, p_max_deltas integer, p_page_base bigint,
	p_page_after bytea, p_page_size integer)
RETURNS TABLE (server_id bigint, server text, epoch bytea, revision bigint,
	snapshot boolean, page_base bigint, more boolean, routable cidr,
	op smallint, change_revision bigint, public_key bytea, allowed_ip cidr,
	keepalive integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
	v_epoch bytea := wgf_epoch();
	v_base bigint;
	v_after bytea := NULL;
	v_more boolean;
BEGIN
	-- Changes after v_from are all in the log when v_from is current or the first one
	-- after it is there (the sweeper removes only a prefix).
	IF p_epoch IS NOT DISTINCT FROM v_epoch AND p_page_base > 0
	   AND p_page_base <= s.revision AND s.revision - p_page_base <= p_max_deltas
	   AND (p_page_base = s.revision OR EXISTS (SELECT 1 FROM changes c
			WHERE c.server_id = s.id AND c.revision = p_page_base + 1)) THEN
		v_base := p_page_base;
		v_after := p_page_after;
	ELSIF p_epoch IS NOT DISTINCT FROM v_epoch AND p_page_base = 0 AND NOT p_want_snapshot
	   AND p_since > 0 AND p_since <= s.revision AND s.revision - p_since <= p_max_deltas
	   AND (p_since = s.revision OR EXISTS (SELECT 1 FROM changes c
			WHERE c.server_id = s.id AND c.revision = p_since + 1)) THEN
		RETURN QUERY SELECT s.id, s.name, v_epoch, s.revision, false, 0::bigint, false,
			s.pool, NULL::smallint, NULL::bigint, NULL::bytea, NULL::cidr, NULL::integer;
		RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::bytea, NULL::bigint,
			NULL::boolean, NULL::bigint, NULL::boolean, NULL::cidr, x.*
		FROM wgf_changes_after(s.id, p_since) x;
		RETURN;
	ELSE
		v_base := s.revision;
	END IF;

	-- One more than a page tells whether another follows.
	SELECT count(*) > p_page_size INTO v_more FROM (
		SELECT r.public_key FROM routers r
		WHERE r.server_id = s.id AND r.released_at IS NULL AND r.public_key IS NOT NULL
		  AND (v_after IS NULL OR r.public_key > v_after)
		ORDER BY r.public_key LIMIT p_page_size + 1) x;
	RETURN QUERY SELECT s.id, s.name, v_epoch, s.revision, true, v_base, v_more, s.pool,
		NULL::smallint, NULL::bigint, NULL::bytea, NULL::cidr, NULL::integer;
	RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::bytea, NULL::bigint, NULL::boolean,
		NULL::bigint, NULL::boolean, NULL::cidr, NULL::smallint, NULL::bigint,
		r.public_key, wgf_peer_ip(r.vpn_ip), coalesce(r.persistent_keepalive, 0)
	FROM routers r
	WHERE r.server_id = s.id AND r.released_at IS NULL AND r.public_key IS NOT NULL
	  AND (v_after IS NULL OR r.public_key > v_after)
	ORDER BY r.public_key LIMIT p_page_size;
	IF NOT v_more AND v_base < s.revision THEN
		RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::bytea, NULL::bigint,
			NULL::boolean, NULL::bigint, NULL::boolean, NULL::cidr, x.*
		FROM wgf_changes_after(s.id, v_base) x;
	END IF;
END
$$;

-- An agent's Report, as arrays: what it applied (in p_epoch), what failed, what the
-- interface shows, and the drift it repaired. Keys come as one bytea of 32-byte keys
-- each (p_error_keys, p_fact_keys, p_drift_keys), the other arrays index-aligned with
-- them. A report of another epoch, or of a revision this database has not reached,
-- applies nothing and fails nothing (those revisions are not this database's), but its
-- handshakes are facts and count.
--   p_drift_kinds  1 extra peer, 2 missing peer, 3 changed peer (proto Drift.Kind)
CREATE FUNCTION wgf_agent_report(p_agent_key bytea, p_nonce bytea, p_epoch bytea,
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
	v_key bytea;
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

	FOR i IN 0 .. n_facts - 1 LOOP
		v_key := substring(p_fact_keys FROM i * 32 + 1 FOR 32);
		SELECT * INTO r FROM routers WHERE routers.server_id = s.id AND released_at IS NULL
			AND routers.public_key = v_key FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		v_hs := CASE WHEN coalesce(p_fact_handshake_ms[i + 1], 0) > 0
			THEN to_timestamp(p_fact_handshake_ms[i + 1] / 1000.0) END;
		v_fresh := v_hs IS NOT NULL AND v_hs > now() - p_handshake_window;
		UPDATE routers SET last_handshake_at = v_hs,
			endpoint = left(p_fact_endpoints[i + 1], 64),
			rx_bytes = coalesce(p_fact_rx[i + 1], rx_bytes),
			tx_bytes = coalesce(p_fact_tx[i + 1], tx_bytes)
		WHERE id = r.id;
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

-- ---- what the channel holds in memory ----

-- As in 0006, with what lets the channel answer long polls and idle resyncs without
-- a database call: each server's pool (the networks its agent may route) and revision.
-- In server id order.
DROP FUNCTION wgf_channel_registry();
CREATE FUNCTION wgf_channel_registry()
RETURNS TABLE (server_id bigint, name text, agent_key bytea, pool_size bigint, pool cidr,
	revision bigint)
LANGUAGE sql STABLE AS $$
	SELECT s.id, s.name, s.agent_key,
		(SELECT count(*) FROM pool_addresses p WHERE p.server_id = s.id), s.pool, s.revision
	FROM servers s WHERE s.agent_key IS NOT NULL AND s.deleted_at IS NULL ORDER BY s.id;
$$;

-- The current epoch and every registered server's revision, in server id order: the
-- channel reads it every few seconds, so a change whose notification was lost still
-- reaches its agent within that time.
CREATE FUNCTION wgf_channel_state()
RETURNS TABLE (epoch bytea, server_ids bigint[], revisions bigint[])
LANGUAGE sql VOLATILE AS $$
	SELECT wgf_epoch(), coalesce(array_agg(s.id ORDER BY s.id), '{}'),
		coalesce(array_agg(s.revision ORDER BY s.id), '{}')
	FROM servers s WHERE s.agent_key IS NOT NULL AND s.deleted_at IS NULL;
$$;

-- The servers whose agents the channel heard from since it last said (once a second).
-- A row another transaction holds (a change, an agent's call, which marks it seen
-- itself) is skipped rather than waited for, and the commit does not wait for the
-- WAL flush: this is a hint for placement and status, and it must not hold up changes.
CREATE FUNCTION wgf_channel_seen(p_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	UPDATE servers SET last_seen_at = now() WHERE id IN (
		SELECT id FROM servers WHERE id = ANY (p_ids) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED);
END
$$;

-- As at the end of 0004: every function of this schema runs with a pinned search_path.
CALL wgf_pin_search_paths(current_schema());
