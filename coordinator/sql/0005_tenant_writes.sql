-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- 0005_tenant_writes: what a tenant, or a stranger, can make the database write and
-- log is bounded. A wrong API key is not an error in PostgreSQL's log; key changes and
-- router deletions are rate-limited per router and per tenant; idempotency replies are
-- kept only for requests that did work, and at most so many per API key; and the
-- change log is compacted below what any agent can still ask for as deltas.

-- ---- unknown keys: an answer, not an error ----

-- PostgreSQL logs every ERROR, and only a superuser can change that
-- (log_min_messages), so a flood of wrong keys that wgf_auth answers by raising WG401
-- would be a flood of lines in the server's log. The coordinator asks this first, in
-- the same statement as the route's function:
--
--   SELECT CASE WHEN wgf_key_known($1, $2) THEN wgf_api_...($1, $2, ...) END
--
-- and reads SQL NULL as 401 without the function being called at all. wgf_auth still
-- raises WG401 for a direct caller, and for a key revoked between the two looks (the
-- coordinator answers that one the same way).
CREATE FUNCTION wgf_key_known(p_prefix text, p_hash bytea) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM api_keys
		WHERE prefix = p_prefix AND hash = p_hash AND revoked_at IS NULL);
END
$$;

-- ---- key changes and deletions: rate-limited ----

-- Every key submission or rotation appends changes and wakes the server's agent, and
-- so does deleting a keyed router. Each is counted in two leaky buckets: the router's
-- (router_key_changes_per_hour, key changes only) and its tenant's
-- (key_changes_per_hour, key changes and deletions). A bucket holds what was counted
-- (*_used) at a time (*_at); it drains at its limit an hour, and a call may go while
-- fewer than the limit are counted: a burst of the limit, then the limit an hour. Past
-- it the answer is 429 rate_limited with Retry-After, as for reservations, and the
-- raise undoes everything the call did. A change of a limit takes effect at the next
-- call. Calls with an admin key are not counted: the operator is not the tenant.
--
-- The router's bucket lives on its row, which the call locks first anyway. The
-- tenant's is taken after the server's row (wgf_append_change), the lock order of
-- 0004_api_v2.sql.
ALTER TABLE tenants
	ADD COLUMN key_changes_per_hour integer NOT NULL DEFAULT 600
		CHECK (key_changes_per_hour >= 0),
	ADD COLUMN router_key_changes_per_hour integer NOT NULL DEFAULT 10
		CHECK (router_key_changes_per_hour >= 0),
	ADD COLUMN key_changes_used double precision NOT NULL DEFAULT 0,
	ADD COLUMN key_changes_at timestamptz;
ALTER TABLE routers
	ADD COLUMN key_changes_used double precision NOT NULL DEFAULT 0,
	ADD COLUMN key_changes_at timestamptz;

-- What a bucket counts with this call, p_used having been counted at p_at; raises 429
-- when the call must wait. The caller stores the result with p_now.
CREATE FUNCTION wgf_bucket_take(p_used double precision, p_at timestamptz,
	p_per_hour integer, p_now timestamptz, p_what text)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
	v double precision := greatest(0, p_used - p_per_hour
		* coalesce(extract(epoch FROM p_now - p_at)::double precision, 0) / 3600);
BEGIN
	IF v + 1 > p_per_hour THEN
		PERFORM wgf_raise('WG429', 'rate_limited',
			format('At most %s %s an hour.', p_per_hour, p_what),
			CASE WHEN p_per_hour = 0 THEN '3600'
			ELSE greatest(1, ceil((v + 1 - p_per_hour) * 3600 / p_per_hour))::text END);
	END IF;
	RETURN v + 1;
END
$$;

-- Counts one key change or deletion in the router's tenant's bucket.
CREATE FUNCTION wgf_tenant_write(c wgf_caller, p_tenant bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_now timestamptz := clock_timestamp();
	t tenants;
BEGIN
	IF c.scope = 'admin' THEN
		RETURN;
	END IF;
	SELECT * INTO t FROM tenants WHERE id = p_tenant FOR NO KEY UPDATE;
	UPDATE tenants SET key_changes_at = v_now, key_changes_used = wgf_bucket_take(
		t.key_changes_used, t.key_changes_at, t.key_changes_per_hour, v_now,
		'key changes and router deletions for this tenant')
	WHERE id = p_tenant;
END
$$;

CREATE OR REPLACE FUNCTION wgf_tenant_json(t tenants) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('slug', t.slug, 'name', t.name, 'router_quota', t.router_quota,
		'reservations_per_hour', t.reservations_per_hour,
		'key_changes_per_hour', t.key_changes_per_hour,
		'router_key_changes_per_hour', t.router_key_changes_per_hour,
		'created_at', t.created_at, 'routers', t.live_routers);
$$;

DROP FUNCTION wgf_api_create_tenant(text, bytea, text, text, integer, integer, text);
-- POST /v1/tenants: a limit left out (NULL) is the column's default.
CREATE FUNCTION wgf_api_create_tenant(p_prefix text, p_hash bytea, p_slug text, p_name text,
	p_quota integer, p_rate integer, p_key_changes integer, p_router_key_changes integer,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	t tenants;
BEGIN
	BEGIN
		INSERT INTO tenants (slug, name, router_quota, reservations_per_hour)
		VALUES (p_slug, p_name, coalesce(p_quota, 100), coalesce(p_rate, 5)) RETURNING * INTO t;
	EXCEPTION
		WHEN unique_violation THEN
			PERFORM wgf_raise('WG409', 'tenant_exists', format('A tenant ''%s'' exists.', p_slug));
		WHEN check_violation THEN
			PERFORM wgf_raise('WG400', 'invalid_request',
				'slug: lower-case letters, digits and dashes, 1-63 characters, starting with a letter or digit.');
	END;
	UPDATE tenants SET key_changes_per_hour = coalesce(p_key_changes, key_changes_per_hour),
		router_key_changes_per_hour = coalesce(p_router_key_changes, router_key_changes_per_hour)
	WHERE id = t.id RETURNING * INTO t;
	PERFORM wgf_audit(c, 'api', 'tenant.created', NULL, NULL, NULL, p_request_id,
		jsonb_build_object('slug', p_slug), t.id);
	RETURN wgf_tenant_json(t);
END
$$;

DROP FUNCTION wgf_api_update_tenant(text, bytea, text, integer, integer, text);
-- PATCH /v1/tenants/{slug}: NULL leaves a limit as it is.
CREATE FUNCTION wgf_api_update_tenant(p_prefix text, p_hash bytea, p_slug text,
	p_quota integer, p_rate integer, p_key_changes integer, p_router_key_changes integer,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, true);
	t tenants;
BEGIN
	UPDATE tenants SET router_quota = coalesce(p_quota, router_quota),
		reservations_per_hour = coalesce(p_rate, reservations_per_hour),
		key_changes_per_hour = coalesce(p_key_changes, key_changes_per_hour),
		router_key_changes_per_hour = coalesce(p_router_key_changes, router_key_changes_per_hour)
	WHERE slug = p_slug RETURNING * INTO t;
	IF NOT FOUND THEN
		PERFORM wgf_raise('WG404', 'tenant_not_found', format('No tenant ''%s''.', p_slug));
	END IF;
	PERFORM wgf_audit(c, 'api', 'tenant.updated', NULL, NULL, NULL, p_request_id,
		jsonb_strip_nulls(jsonb_build_object('router_quota', p_quota,
			'reservations_per_hour', p_rate, 'key_changes_per_hour', p_key_changes,
			'router_key_changes_per_hour', p_router_key_changes)), t.id);
	RETURN wgf_tenant_json(t);
END
$$;

-- ---- idempotency: replies of work done, at most so many per API key ----

-- A reply is kept only for a call that did work: a call that fails raises, which
-- takes its row away with everything else, and a call that changes nothing (a key the
-- router already has) drops its row (wgf_idem_forget), so that a retry simply asks
-- again. Each kept reply is numbered per API key (api_keys.idem_seq, under the key
-- row's lock, taken last), and the reply numbered 1000 before it goes: at most 1000
-- replies are kept per API key, the newest, each for at most 24 hours (the sweeper).
-- A retry of an older request is done again, as a new request.
ALTER TABLE api_keys ADD COLUMN idem_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN seq bigint;
CREATE INDEX idempotency_keys_seq ON idempotency_keys (api_key_id, seq);

CREATE FUNCTION wgf_idem_kept() RETURNS integer LANGUAGE sql IMMUTABLE AS $$
	SELECT 1000;
$$;

CREATE OR REPLACE FUNCTION wgf_idem_end(c wgf_caller, p_key text, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	v_seq bigint;
BEGIN
	IF p_key IS NOT NULL THEN
		UPDATE api_keys SET idem_seq = idem_seq + 1 WHERE id = c.key_id
		RETURNING idem_seq INTO v_seq;
		UPDATE idempotency_keys SET response = p_body, seq = v_seq
		WHERE api_key_id = c.key_id AND key = p_key;
		DELETE FROM idempotency_keys
		WHERE api_key_id = c.key_id AND seq <= v_seq - wgf_idem_kept();
	END IF;
	RETURN p_body;
END
$$;

-- The reply of a call that did nothing: not kept.
CREATE FUNCTION wgf_idem_forget(c wgf_caller, p_key text, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF p_key IS NOT NULL THEN
		DELETE FROM idempotency_keys WHERE api_key_id = c.key_id AND key = p_key;
	END IF;
	RETURN p_body;
END
$$;

-- ---- the router writes, counted ----

-- PUT /v1/routers/{id}/public-key, as in 0004_api_v2.sql, with the router's and the
-- tenant's buckets, and no reply kept for a no-op.
CREATE OR REPLACE FUNCTION wgf_api_set_public_key(p_prefix text, p_hash bytea, p_id uuid,
	p_key bytea, p_keepalive integer, p_request_id text, p_idem_key text, p_request_hash bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	v_prev jsonb := wgf_idem_begin(c, p_idem_key, 'public-key:' || p_id, p_request_hash);
	r routers;
	t tenants;
	v_old bytea;
	v_rev bigint;
	v_now timestamptz := clock_timestamp();
	v_used double precision;
	v_in_use constant text :=
		'This public key is already registered; generate a new key pair on the router.';
BEGIN
	IF v_prev IS NOT NULL THEN
		RETURN v_prev;
	END IF;
	r := wgf_router_for_update(c, p_id);
	IF r.status = 'expired' OR (r.status = 'pending' AND r.reservation_expires_at <= now()) THEN
		PERFORM wgf_raise('WG409', 'reservation_expired',
			'The reservation expired and its address was released; reserve again.');
	END IF;
	IF r.public_key = p_key THEN
		RETURN wgf_idem_forget(c, p_idem_key, wgf_router_json(r));
	END IF;
	IF EXISTS (SELECT 1 FROM routers WHERE public_key = p_key AND released_at IS NULL) THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', v_in_use);
	END IF;
	v_used := r.key_changes_used;
	IF c.scope <> 'admin' THEN
		SELECT * INTO t FROM tenants WHERE id = r.tenant_id;
		v_used := wgf_bucket_take(r.key_changes_used, r.key_changes_at,
			t.router_key_changes_per_hour, v_now, 'key changes for one router');
	END IF;
	v_old := r.public_key;
	IF v_old IS NOT NULL THEN
		PERFORM wgf_append_change(r.server_id, 'remove', r.id, v_old, r.vpn_ip, 0);
	END IF;
	v_rev := wgf_append_change(r.server_id, 'upsert', r.id, p_key, r.vpn_ip, p_keepalive);
	PERFORM wgf_tenant_write(c, r.tenant_id);
	-- A router that took the key after the check above (committed while this one
	-- waited on the unique index) gets the same answer.
	BEGIN
		UPDATE routers SET public_key = p_key, status = 'configured', status_reason = NULL,
			configured_at = now(), key_revision = v_rev, key_changes_used = v_used,
			key_changes_at = CASE WHEN c.scope = 'admin' THEN key_changes_at ELSE v_now END
		WHERE id = r.id RETURNING * INTO r;
	EXCEPTION WHEN unique_violation THEN
		PERFORM wgf_raise('WG409', 'public_key_in_use', v_in_use);
	END;
	PERFORM wgf_audit(c, 'api', CASE WHEN v_old IS NULL THEN 'router.key_set'
		ELSE 'router.key_rotated' END, r.id, r.server_id, r.vpn_ip, p_request_id,
		jsonb_build_object('public_key', encode(p_key, 'base64'), 'revision', v_rev,
			'old_public_key', encode(v_old, 'base64')), r.tenant_id);
	RETURN wgf_idem_end(c, p_idem_key, wgf_router_json(r));
END
$$;

-- DELETE /v1/routers/{id}, as in 0004_api_v2.sql, counted in the tenant's bucket.
CREATE OR REPLACE FUNCTION wgf_api_delete_router(p_prefix text, p_hash bytea, p_id uuid,
	p_request_id text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	c wgf_caller := wgf_auth(p_prefix, p_hash, false);
	r routers := wgf_router_for_update(c, p_id);
	v_rev bigint;
BEGIN
	IF r.public_key IS NOT NULL AND r.released_at IS NULL THEN
		v_rev := wgf_append_change(r.server_id, 'remove', r.id, r.public_key, r.vpn_ip, 0);
	END IF;
	PERFORM wgf_tenant_write(c, r.tenant_id);
	IF r.released_at IS NULL THEN
		PERFORM wgf_release_address(r);
	END IF;
	UPDATE routers SET status = 'deleted', released_at = coalesce(released_at, now())
	WHERE id = r.id;
	PERFORM wgf_audit(c, 'api', 'router.deleted', r.id, r.server_id, r.vpn_ip, p_request_id,
		jsonb_build_object('revision', v_rev), r.tenant_id);
	RETURN '{}'::jsonb;
END
$$;

-- ---- the change log: compacted ----

-- An agent asks for the changes after its revision p_since. wgf_agent_sync sends them
-- as deltas only while the first one it needs (p_since + 1) is still in the log, read
-- in the same statement (one snapshot) as the deltas themselves; otherwise it sends a
-- snapshot, as for an agent too far behind. Revisions of a server are consecutive and
-- the sweeper removes only a prefix of them, so when p_since + 1 is there every later
-- one is too. The rest is 0003_agents.sql's.
CREATE OR REPLACE FUNCTION wgf_agent_sync(p_agent_key bytea, p_nonce bytea, p_since bigint,
	p_want_snapshot boolean, p_max_deltas integer, p_keepalive integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	s servers := wgf_agent_begin(p_agent_key, p_nonce);
	v_changes jsonb;
	v_first bigint;
BEGIN
	IF NOT (p_want_snapshot OR p_since <= 0 OR p_since > s.revision
	        OR s.revision - p_since > p_max_deltas) THEN
		SELECT coalesce(jsonb_agg(jsonb_build_object('op', c.op, 'revision', c.revision,
				'peer', wgf_peer_json(c.public_key, host(c.allowed_ips[1])::inet,
					c.persistent_keepalive, c.router_id)) ORDER BY c.revision), '[]'),
			min(c.revision)
		INTO v_changes, v_first
		FROM changes c WHERE c.server_id = s.id AND c.revision > p_since;
		IF p_since = s.revision OR v_first = p_since + 1 THEN
			RETURN jsonb_build_object('server_id', s.id, 'server', s.name,
				'revision', s.revision, 'snapshot', false, 'peers', '[]'::jsonb,
				'changes', v_changes);
		END IF;
	END IF;
	RETURN jsonb_build_object('server_id', s.id, 'server', s.name, 'revision', s.revision,
		'snapshot', true,
		'peers', (SELECT coalesce(jsonb_agg(wgf_peer_json(r.public_key, r.vpn_ip,
				p_keepalive, r.id) ORDER BY r.vpn_ip), '[]')
			FROM routers r WHERE r.server_id = s.id AND r.released_at IS NULL
			  AND r.public_key IS NOT NULL),
		'changes', '[]'::jsonb);
END
$$;

-- What the sweeper keeps of each server's change log: every change its agent has not
-- reported as applied, and the newest 1000 in any case (what /v1/status's apply
-- latency reads); of a removed server, nothing.
CREATE FUNCTION wgf_changes_kept() RETURNS integer LANGUAGE sql IMMUTABLE AS $$
	SELECT 1000;
$$;

-- The sweeper, as in 0004_api_v2.sql, and then the change log below what each server
-- keeps, at most p_batch rows a run. A server's row is taken with SKIP LOCKED: an
-- agent's message or a change in flight holds it, and the server waits for the next
-- run rather than the sweeper for it (the tenants this run locked come before servers
-- in the lock order). Holding the row, nobody else touches the server's changes.
CREATE OR REPLACE FUNCTION wgf_sweep(p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	v_ids uuid[];
	v_left integer := p_batch;
	v_n integer;
	s record;
BEGIN
	IF NOT pg_try_advisory_xact_lock(2003265074) THEN
		RETURN 0;
	END IF;
	SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM (
		SELECT id FROM routers WHERE status = 'pending' AND reservation_expires_at <= now()
		ORDER BY reservation_expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED) x;
	IF cardinality(v_ids) > 0 THEN
		PERFORM 1 FROM tenants WHERE id IN (SELECT tenant_id FROM routers WHERE id = ANY (v_ids))
		ORDER BY id FOR UPDATE;
		UPDATE tenants t SET live_routers = t.live_routers - g.n
		FROM (SELECT tenant_id, count(*) AS n FROM routers WHERE id = ANY (v_ids)
			GROUP BY tenant_id) g
		WHERE t.id = g.tenant_id;
		UPDATE pool_addresses SET router_id = NULL, free_since = now()
		WHERE router_id = ANY (v_ids);
		UPDATE server_usage u SET used = u.used - g.n
		FROM (SELECT server_id, count(*) AS n FROM routers WHERE id = ANY (v_ids)
			GROUP BY server_id) g
		WHERE u.server_id = g.server_id AND u.shard = txid_current() % 16;
		WITH x AS (
			UPDATE routers SET status = 'expired', released_at = now(),
				status_reason = 'reservation expired before a public key was submitted'
			WHERE id = ANY (v_ids)
			RETURNING id, tenant_id, server_id, vpn_ip, reservation_expires_at)
		INSERT INTO audit_log (tenant_id, actor, action, router_id, server_id, vpn_ip, detail)
		SELECT tenant_id, 'sweeper', 'router.expired', id, server_id, vpn_ip,
			jsonb_build_object('expired_at', reservation_expires_at)
		FROM x ORDER BY reservation_expires_at;
	END IF;
	DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
	FOR s IN
		SELECT sv.id, CASE WHEN sv.deleted_at IS NOT NULL THEN sv.revision
			ELSE least(sv.applied_revision, sv.revision - wgf_changes_kept()) END AS floor,
			(SELECT min(revision) FROM changes c WHERE c.server_id = sv.id) AS first
		FROM servers sv ORDER BY sv.id
	LOOP
		EXIT WHEN v_left <= 0;
		CONTINUE WHEN s.first IS NULL OR s.first > s.floor;
		PERFORM 1 FROM servers WHERE id = s.id FOR NO KEY UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		DELETE FROM changes WHERE server_id = s.id
		  AND revision BETWEEN s.first AND least(s.floor, s.first + v_left - 1);
		GET DIAGNOSTICS v_n = ROW_COUNT;
		v_left := v_left - v_n;
	END LOOP;
	RETURN cardinality(v_ids);
END
$$;

-- ---- search_path ----

-- Pins every function of this schema that has no search_path of its own (see
-- migrate.h and the end of 0004_api_v2.sql).
CALL wgf_pin_search_paths(current_schema());
