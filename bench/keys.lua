-- keys.lua - wrk script of make bench.  Every request of every column
-- carries an X-Key header, so that all columns cost wrk the same (one Lua
-- call per request): "wrk ... -s bench/keys.lua URL -- KEYS" cycles through
-- KEYS distinct values (key-000000, key-000001, ...); with KEYS = 1 every
-- request is the same.  The requests are formatted once, in init().

local reqs = {}
local nreqs = 1
local i = 0

function init(args)
    nreqs = tonumber(args[1]) or 1
    if nreqs < 1 then
        nreqs = 1
    end
    for k = 1, nreqs do
        reqs[k] = wrk.format(nil, nil,
                             { ["Host"] = "localhost",
                               ["X-Key"] = string.format("key-%06d", k - 1) })
    end
    -- threads start at different places of the cycle
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
    i = math.random(nreqs) - 1
end

function request()
    i = i + 1
    if i > nreqs then
        i = 1
    end
    return reqs[i]
end
