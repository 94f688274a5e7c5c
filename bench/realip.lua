-- realip.lua - wrk script of make bench-reputation: every request carries
-- "X-Real-IP: ADDR" ("wrk ... -s bench/realip.lua URL -- ADDR"), the
-- address that nginx's realip module gives it.  Formatted once, in init().

local req

function init(args)
    req = wrk.format(nil, nil, { ["Host"] = "localhost",
                                 ["X-Real-IP"] = args[1] })
end

function request()
    return req
end
