-- SPDX-License-Identifier: MIT
-- Copyright (c) 2026 The wgfleet authors
--
-- reserve.lua: wrk script for tests/bench/reserve.sh. Every request is
-- POST /v1/routers {"server": NAME} with a tenant key; keys and servers rotate round
-- robin (each thread from its own offset), spreading the load over tenants and
-- servers as pgbench's random choice of script and server does. Any answer other than
-- 201 counts as an error.
--
--   wrk -t T -c C -d D -s reserve.lua http://127.0.0.1:PORT/v1/routers -- \
--       KEYS_FILE FIRST_SERVER LAST_SERVER
--
-- KEYS_FILE holds one API key a line; servers are named FIRST..LAST (numbers). done()
-- prints one line for reserve.sh to parse:
--   WGF_WRK requests=N ok=N non201=N socket_errors=N duration_us=N p50_us=N p99_us=N
--           mean_us=N max_us=N statuses=CODE:N,...
-- and, when the environment names a file in WGF_WRK_HISTOGRAM, writes wrk's latency
-- histogram there ("microseconds count" a line) so that several runs can be merged.
-- wrk's latency figures include its own correction for coordinated omission (extra
-- samples for responses slower than twice the mean interval between requests on a
-- connection).

local threads = {}
local counter = 0

function setup(thread)
	thread:set("id", counter)
	table.insert(threads, thread)
	counter = counter + 1
end

local reqs = {}
local n_reqs = 0
local next_req = 1

function init(args)
	local keys_file, first, last = args[1], tonumber(args[2]), tonumber(args[3])
	local keys = {}

	assert(keys_file and first and last, "usage: -- KEYS_FILE FIRST_SERVER LAST_SERVER")
	for line in io.lines(keys_file) do
		if #line > 0 then
			table.insert(keys, line)
		end
	end
	assert(#keys > 0, "no keys in " .. keys_file)
	local n_servers = last - first + 1
	-- Enough distinct requests that every (key, server) pairing repeats rarely; built
	-- once here so that request() costs nothing.
	n_reqs = math.max(#keys, n_servers) * 4
	if n_reqs < 1024 then
		n_reqs = 1024
	end
	for i = 0, n_reqs - 1 do
		local j = i + id * 7919
		local key = keys[(j % #keys) + 1]
		local server = first + (j % n_servers)
		reqs[i + 1] = wrk.format("POST", "/v1/routers", {
			["Authorization"] = "Bearer " .. key,
			["Content-Type"] = "application/json",
		}, '{"server":"' .. server .. '"}')
	end
	ok = 0
	non201 = 0
	statuses = {}
end

function request()
	local r = reqs[next_req]
	next_req = next_req + 1
	if next_req > n_reqs then
		next_req = 1
	end
	return r
end

function response(status, headers, body)
	if status == 201 then
		ok = ok + 1
	else
		non201 = non201 + 1
		statuses[status] = (statuses[status] or 0) + 1
		if non201 <= 3 then
			io.stderr:write(string.format("reserve.lua: HTTP %d: %s\n", status,
				string.sub(body or "", 1, 300)))
		end
	end
end

function done(summary, latency, requests)
	local hist = os.getenv("WGF_WRK_HISTOGRAM")
	if hist and #hist > 0 then
		local f = assert(io.open(hist, "w"))
		for i = 1, #latency do
			local v, n = latency(i)
			f:write(v, " ", n, "\n")
		end
		f:close()
	end
	local total_ok, total_bad, codes = 0, 0, {}
	for _, thread in ipairs(threads) do
		total_ok = total_ok + (thread:get("ok") or 0)
		total_bad = total_bad + (thread:get("non201") or 0)
		for code, n in pairs(thread:get("statuses") or {}) do
			codes[code] = (codes[code] or 0) + n
		end
	end
	local parts = {}
	for code, n in pairs(codes) do
		table.insert(parts, code .. ":" .. n)
	end
	local e = summary.errors
	io.write(string.format("WGF_WRK requests=%d ok=%d non201=%d socket_errors=%d " ..
		"duration_us=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d statuses=%s\n",
		summary.requests, total_ok, total_bad,
		e.connect + e.read + e.write + e.timeout, summary.duration,
		latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
		#parts > 0 and table.concat(parts, ",") or "-"))
end
