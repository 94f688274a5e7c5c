// distinct_redis.cpp - the Redis side of distinct zones with sync=strict:
// the script, its arguments and its reply (trl_distinct.h).
#include <cstdio>
#include <cstring>

#include "trl_distinct.h"

namespace {

// KEYS[1]: the key's sorted set; ARGV: op (a acquire, c confirm, x
// cancel; active zones: s settle, r release), W, N, the fingerprint (the
// member), flags (1 provisional, 2 force, 4 made: the admission added the
// member, 8 unique: a member met again is a collision, not a repeat), the
// admission's time (Redis ms, from the acquire's reply), the lifetime
// (settle, ms) and the token's id (settle, release; 0: none).  Scores are
// 2 * time, + 1 while the member is a sole provisional hold; what left the
// window (time + W <= now) is trimmed first.  An active zone's W is MAX
// and a settled place's time is its expiry - MAX.  Replies "admitted made
// count free_in reset_in now" (settle, release: made = it changed a
// member).
const char kScript[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local key, op, fp = KEYS[1], ARGV[1], ARGV[4]\n"
    "local W, N = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local flags, stamp = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local life, id = tonumber(ARGV[7]), ARGV[8]\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', 2 * (now - W) + 1)\n"
    "local function reply(admitted, made, free_in)\n"
    "  local count = redis.call('ZCARD', key)\n"
    "  local reset_in = 0\n"
    "  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')\n"
    "  if newest[2] then\n"
    "    reset_in = math.max(0, math.floor(tonumber(newest[2]) / 2) + W - now)\n"
    "  end\n"
    "  return table.concat({admitted, made, count, free_in, reset_in, now},"
    " ' ')\n"
    "end\n"
    "local cur = redis.call('ZSCORE', key, fp)\n"
    "if cur then cur = tonumber(cur) end\n"
    "if op == 'a' then\n"
    "  if cur and math.floor(flags / 8) % 2 == 1 then\n"
    "    return reply(0, 0, 1)\n"
    "  end\n"
    "  if cur then\n"
    "    redis.call('ZADD', key, math.max(cur - cur % 2, 2 * now), fp)\n"
    "    redis.call('PEXPIRE', key, W + 1000)\n"
    "    return reply(1, 0, 0)\n"
    "  end\n"
    "  local count = redis.call('ZCARD', key)\n"
    "  if count >= N and math.floor(flags / 2) % 2 == 0 then\n"
    "    local r = redis.call('ZRANGE', key, count - N, count - N, "
    "'WITHSCORES')\n"
    "    local free_in = math.floor(tonumber(r[2]) / 2) + W - now\n"
    "    return reply(0, 0, math.max(free_in, 1))\n"
    "  end\n"
    "  redis.call('ZADD', key, 2 * now + flags % 2, fp)\n"
    "  redis.call('PEXPIRE', key, W + 1000)\n"
    "  return reply(1, 1, 0)\n"
    "end\n"
    "local made = 0\n"
    "if op == 'r' then\n"
    "  local victim = nil\n"
    "  if id ~= '0' then\n"
    "    local sc = redis.call('ZSCORE', key, id)\n"
    "    if sc and tonumber(sc) % 2 == 0 then victim = id end\n"
    "  else\n"
    "    local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')\n"
    "    for i = 1, #all, 2 do\n"
    "      if tonumber(all[i + 1]) % 2 == 0 then victim = all[i] break end\n"
    "    end\n"
    "  end\n"
    "  if victim then\n"
    "    redis.call('ZREM', key, victim)\n"
    "    made = 1\n"
    "  end\n"
    "  return reply(1, made, 0)\n"
    "end\n"
    "if op == 's' then\n"
    "  if cur and cur == 2 * stamp + 1 then\n"
    "    redis.call('ZREM', key, fp)\n"
    "    if life > 0 then\n"
    "      local member = fp\n"
    "      if id ~= '0' and not redis.call('ZSCORE', key, id) then\n"
    "        member = id\n"
    "      end\n"
    "      redis.call('ZADD', key, 2 * (now + math.min(life, W) - W), member)\n"
    "      redis.call('PEXPIRE', key, W + 1000)\n"
    "    end\n"
    "    made = 1\n"
    "  end\n"
    "  return reply(1, made, 0)\n"
    "end\n"
    "if cur and cur == 2 * stamp + 1 then\n"
    "  if op == 'c' then\n"
    "    redis.call('ZADD', key, 'XX', 2 * stamp, fp)\n"
    "  elseif op == 'x' and math.floor(flags / 4) % 2 == 1 then\n"
    "    redis.call('ZREM', key, fp)\n"
    "    made = 1\n"
    "  end\n"
    "end\n"
    "return reply(1, made, 0)\n";

// One unsigned decimal, up to max; p advances past it.
bool number(const char *&p, const char *end, uint64_t max, uint64_t &v) {
    const char *start = p;
    v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= 19) {
            return false;
        }
        v = v * 10 + static_cast<uint64_t>(*p - '0');
        p++;
    }
    return p > start && v <= max;
}

}  // namespace

extern "C" {

const char *trl_distinct_script(void) noexcept {
    return kScript;
}

size_t trl_distinct_redis_args(const trl_distinct_redis_req_t *req,
                               char *buf, size_t len,
                               trl_distinct_arg_t *argv, size_t max) noexcept {
    static const char ops[] = {'a', 'c', 'x', 's', 'r'};

    if (req == nullptr || req->op < 0 || req->op > TRL_DISTINCT_OP_RELEASE
        || max < TRL_DISTINCT_REDIS_ARGS || req->limit < 1
        || req->window_ms < 1) {
        return 0;
    }
    unsigned flags = (req->provisional ? 1 : 0) | (req->force ? 2 : 0)
                     | (req->made ? 4 : 0) | (req->unique ? 8 : 0);
    unsigned long long values[TRL_DISTINCT_REDIS_ARGS - 1] = {
        req->window_ms, req->limit, req->fp & 0x7fffffffu, flags,
        req->stamp_ms, req->lifetime_ms, req->id & 0x7fffffffu};

    size_t used = 0;
    for (size_t i = 0; i < TRL_DISTINCT_REDIS_ARGS; i++) {
        int n = i == 0 ? std::snprintf(buf + used, len - used, "%c",
                                       ops[req->op])
                       : std::snprintf(buf + used, len - used, "%llu",
                                       values[i - 1]);
        if (n < 0 || static_cast<size_t>(n) >= len - used) {
            return 0;
        }
        argv[i].data = buf + used;
        argv[i].len = static_cast<size_t>(n);
        used += static_cast<size_t>(n) + 1;
        if (used >= len) {
            return 0;
        }
    }
    return TRL_DISTINCT_REDIS_ARGS;
}

int trl_distinct_redis_reply(const char *text, size_t len,
                             trl_distinct_reply_t *out) noexcept {
    static const uint64_t max[6] = {1, 1, UINT32_MAX, UINT32_MAX, UINT32_MAX,
                                    UINT64_C(1) << 53};
    if (text == nullptr || out == nullptr) {
        return TRL_ERROR;
    }
    const char *p = text, *end = text + len;
    uint64_t v[6];
    for (int i = 0; i < 6; i++) {
        if (i > 0 && (p == end || *p++ != ' ')) {
            return TRL_ERROR;
        }
        if (!number(p, end, max[i], v[i])) {
            return TRL_ERROR;
        }
    }
    if (p != end) {
        return TRL_ERROR;
    }
    out->admitted = static_cast<uint8_t>(v[0]);
    out->made = static_cast<uint8_t>(v[1]);
    out->count = static_cast<uint32_t>(v[2]);
    out->free_in_ms = static_cast<uint32_t>(v[3]);
    out->reset_in_ms = static_cast<uint32_t>(v[4]);
    out->stamp_ms = v[5];
    return TRL_OK;
}

}  // extern "C"
