-- The bench's "redis-incr" columns: a fixed-window limiter that asks Redis
-- on every request, as OpenResty users build it (lua-resty-redis, or
-- lua-resty-limit-count's Redis variant): INCR of the key's counter for
-- the current window, EXPIRE on the window's first hit, 429 over the
-- limit.  The client is written out here in RESP (Debian has no
-- lua-resty-redis): one cosocket from the worker's keepalive pool per
-- request, the same two round trips.  A Redis error lets the request
-- through (fail open, as the module's fail=open does).
--
-- nginx variables: $incr_key (the key), $incr_redis_port, $incr_limit
-- (requests per window), $incr_window (seconds).

local key = ngx.var.incr_key
local window = tonumber(ngx.var.incr_window)
local limit = tonumber(ngx.var.incr_limit)
local name = "incr:" .. key .. ":" .. math.floor(ngx.now() / window)

local function command(sock, ...)
    local args = { ... }
    local req = { "*", #args, "\r\n" }
    for _, a in ipairs(args) do
        a = tostring(a)
        req[#req + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
    end
    local ok, err = sock:send(table.concat(req))
    if not ok then
        return nil, err
    end
    local line, rerr = sock:receive("*l")
    if not line then
        return nil, rerr
    end
    if line:sub(1, 1) == ":" then
        return tonumber(line:sub(2))
    end
    return nil, line
end

local sock = ngx.socket.tcp()
sock:settimeouts(100, 100, 100)
local ok, err = sock:connect("127.0.0.1", tonumber(ngx.var.incr_redis_port))
if not ok then
    ngx.log(ngx.ERR, "redis-incr: connect: ", err)
    return
end
local n, cerr = command(sock, "INCR", name)
if n == 1 then
    local n2
    n2, cerr = command(sock, "EXPIRE", name, window + 1)
    if not n2 then
        n = nil
    end
end
if not n then
    ngx.log(ngx.ERR, "redis-incr: ", cerr)
    sock:close()
    return
end
sock:setkeepalive(60000, 256)
if n > limit then
    return ngx.exit(429)
end
