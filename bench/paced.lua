-- paced.lua - fixed-rate wrk script of make bench (strict latency).
--
--   wrk -tT -cC -dD --latency -s bench/paced.lua URL -- KEYS RATE
--
-- RATE: requests per second of each wrk thread; KEYS: distinct X-Key values
-- (as bench/keys.lua: the same request, the same cost).  Debian's wrk has
-- no -R (wrk2), so the pace comes from wrk's delay() hook, which wrk calls
-- before every request of a connection (after its previous response): each
-- thread keeps a schedule of send slots RATE per second apart, and a
-- connection that becomes free takes the next slot and waits for it.  With
-- enough connections (C / RATE well above the response time) every slot is
-- sent on time; one sent more than 1 ms late (no connection was free) is
-- counted as "late".  wrk waits whole milliseconds (delay() is rounded
-- here), so requests leave in bursts of about RATE/1000.
--
-- wrk's own latency record starts when a request is written, after its
-- wait for the slot: what done() prints is the service time on loopback.
-- The clock is CLOCK_MONOTONIC through LuaJIT's FFI (wrk links LuaJIT).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } trl_timespec_t;
int clock_gettime(int clk_id, trl_timespec_t *tp);
]]
local ts = ffi.new("trl_timespec_t")

local function now_ms()
    ffi.C.clock_gettime(1, ts)              -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local reqs = {}
local nreqs = 1
local i = 0
local gap = 1                               -- ms between slots
local next_slot = nil
late = 0
slots = 0

function init(args)
    local rate = tonumber(args[2]) or 1000
    if rate < 1 then
        rate = 1
    end
    gap = 1000 / rate
    nreqs = tonumber(args[1]) or 1
    if nreqs < 1 then
        nreqs = 1
    end
    for k = 1, nreqs do
        reqs[k] = wrk.format(nil, nil,
                             { ["Host"] = "localhost",
                               ["X-Key"] = string.format("key-%06d", k - 1) })
    end
end

function delay()
    local now = now_ms()
    if next_slot == nil then
        next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + gap
    slots = slots + 1
    if wait < -1 then
        late = late + 1
    end
    if wait <= 0 then
        return 0
    end
    return math.floor(wait + 0.5)
end

function request()
    i = i + 1
    if i > nreqs then
        i = 1
    end
    return reqs[i]
end

function done(summary, latency, requests)
    local late_n, slots_n = 0, 0
    for _, t in ipairs(threads) do
        late_n = late_n + (tonumber(t:get("late")) or 0)
        slots_n = slots_n + (tonumber(t:get("slots")) or 0)
    end
    local e = summary.errors
    io.write(string.format(
        "paced: requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d"
        .. " p999_us=%d max_us=%d mean_us=%.1f late=%d slots=%d"
        .. " errors=%d status_errors=%d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9),
        latency.max, latency.mean, late_n, slots_n,
        e.connect + e.read + e.write + e.timeout, e.status))
end
