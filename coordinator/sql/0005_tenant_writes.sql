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

-- ---- search_path ----

-- Pins every function of this schema that has no search_path of its own, as at the
-- end of 0004_api_v2.sql (see migrate.h).
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
		  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) g WHERE g LIKE 'search_path=%')
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
			AND d.objid = p.oid AND d.deptype = 'e')
	LOOP
		EXECUTE format('ALTER ROUTINE %s SET search_path = pg_catalog, %I, pg_temp',
			f, current_schema());
	END LOOP;
END
$$;
