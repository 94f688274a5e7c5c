// scripts_encode.cpp - the scripts' argument vectors (see trl_scripts.h
// and, for what each script reads, sync.cpp).
#include <charconv>
#include <cstring>

#include "trl_scripts.h"

namespace {

// Appends to an argument vector; every append fails (and leaves the
// vector as it was) when the room is short.
class Args {
  public:
    explicit Args(trl_argv_t *argv) : a_(argv) {}

    bool bytes(const char *data, size_t len) {
        if (a_->n >= a_->max || (data == nullptr && len > 0)) {
            return false;
        }
        a_->args[a_->n++] = trl_bytes_t{data, len};
        return true;
    }

    bool number(uint64_t v) {
        char *p = room(TRL_ARG_NUM_MAX);
        if (p == nullptr) {
            return false;
        }
        auto r = std::to_chars(p, p + TRL_ARG_NUM_MAX, v);
        return commit(p, static_cast<size_t>(r.ptr - p));
    }

    // a penalty factor as Lua reads it: "2.000", "1.500" (three decimals)
    bool factor(double f) {
        if (!(f >= 0 && f < 1e15)) {
            return false;
        }
        uint64_t milli = static_cast<uint64_t>(f * 1000 + 0.5);
        char *p = room(TRL_ARG_NUM_MAX);
        if (p == nullptr) {
            return false;
        }
        auto r = std::to_chars(p, p + TRL_ARG_NUM_MAX - 4, milli / 1000);
        char *e = r.ptr;
        *e++ = '.';
        *e++ = static_cast<char>('0' + milli % 1000 / 100);
        *e++ = static_cast<char>('0' + milli % 100 / 10);
        *e++ = static_cast<char>('0' + milli % 10);
        return commit(p, static_cast<size_t>(e - p));
    }

    // "l:" and the node's id in 16 hex digits: its reservations' field
    bool own_field(uint64_t node_id) {
        static const char hex[] = "0123456789abcdef";
        char *p = room(18);
        if (p == nullptr) {
            return false;
        }
        p[0] = 'l';
        p[1] = ':';
        for (int i = 0; i < 16; i++) {
            p[2 + i] = hex[(node_id >> (60 - 4 * i)) & 0xf];
        }
        return commit(p, 18);
    }

    // text written into the buffer (at most max bytes) by fill, which
    // returns its length (0: failed)
    template <typename F> bool written(size_t max, F fill) {
        char *p = room(max);
        if (p == nullptr) {
            return false;
        }
        size_t len = fill(p, max);
        return len > 0 && len <= max && commit(p, len);
    }

  private:
    char *room(size_t len) {
        if (a_->n >= a_->max || a_->size - a_->used < len) {
            return nullptr;
        }
        return a_->buf + a_->used;
    }

    bool commit(char *p, size_t len) {
        a_->used += len;
        a_->args[a_->n++] = trl_bytes_t{p, len};
        return true;
    }

    trl_argv_t *a_;
};

// W, cell, N: the first arguments of the counting scripts
bool zone_args(Args &a, const trl_script_zone_t *z) {
    return a.number(z->window_ms) && a.number(trl_redis_cell_ms(z->window_ms))
           && a.number(z->limit);
}

// An encoder's outcome: a failed one leaves the vector empty.
int done(trl_argv_t *argv, bool ok) {
    if (!ok) {
        argv->n = 0;
        argv->used = 0;
        return TRL_ERROR;
    }
    return TRL_OK;
}

bool valid_zone(const trl_script_zone_t *z) {
    return z != nullptr && z->window_ms >= 1
           && z->window_ms <= TRL_RATE_MAX_WINDOW_MS && z->limit >= 1
           && z->limit <= TRL_RATE_MAX_LIMIT;
}

bool start(trl_argv_t *argv) {
    if (argv == nullptr) {
        return false;
    }
    argv->n = 0;
    argv->used = 0;
    return true;
}

// <prefix>reputation:<NAME>: the hash of an uploaded reputation list
bool rep_key(Args &a, const char *prefix, size_t prefix_len,
             const char *name, size_t name_len) {
    static const char kTag[] = "reputation:";
    constexpr size_t kTagLen = sizeof(kTag) - 1;
    if ((prefix == nullptr && prefix_len > 0) || name == nullptr
        || name_len == 0 || name_len >= TRL_REP_KEY_BUF(0) - kTagLen)
    {
        return false;
    }
    return a.written(prefix_len + kTagLen + name_len, [&](char *p, size_t) {
        if (prefix_len) {
            std::memcpy(p, prefix, prefix_len);
        }
        std::memcpy(p + prefix_len, kTag, kTagLen);
        std::memcpy(p + prefix_len + kTagLen, name, name_len);
        return prefix_len + kTagLen + name_len;
    });
}

}  // namespace

extern "C" {

void trl_argv_init(trl_argv_t *argv, trl_bytes_t *args, size_t max,
                   char *buf, size_t size) noexcept {
    argv->args = args;
    argv->max = args ? max : 0;
    argv->n = 0;
    argv->buf = buf;
    argv->size = buf ? size : 0;
    argv->used = 0;
}

// keys; W, cell, N, the node's field; per key: delta, leased, penalty,
// violations, forgive
int trl_publish_encode(const trl_script_zone_t *zone,
                       const trl_publish_key_t *keys, size_t n,
                       trl_argv_t *argv) noexcept {
    if (!start(argv) || !valid_zone(zone) || n == 0 || keys == nullptr) {
        return TRL_ERROR;
    }
    Args a(argv);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = keys[i].leased <= keys[i].delta
             && a.bytes(keys[i].name.data, keys[i].name.len);
    }
    ok = ok && zone_args(a, zone) && a.own_field(zone->node_id);
    for (size_t i = 0; ok && i < n; i++) {
        const trl_publish_key_t &k = keys[i];
        ok = a.number(k.delta) && a.number(k.leased)
             && a.number(k.penalty_ms) && a.number(k.violations)
             && a.number(k.forgive_ms);
    }
    return done(argv, ok);
}

// keys; W, cell, N, the node's field, the lease's length, the hold, the
// largest share (a tenth of N)
int trl_ask_encode(const trl_script_zone_t *zone, uint64_t hold_ms,
                   const trl_bytes_t *names, size_t n,
                   trl_argv_t *argv) noexcept {
    if (!start(argv) || !valid_zone(zone) || n == 0 || names == nullptr) {
        return TRL_ERROR;
    }
    Args a(argv);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = a.bytes(names[i].data, names[i].len);
    }
    ok = ok && zone_args(a, zone) && a.own_field(zone->node_id)
         && a.number(trl_lease_ms(zone->window_ms)) && a.number(hold_ms)
         && a.number((zone->limit + 9) / 10);
    return done(argv, ok);
}

// key; W, cell, N, the penalty's base (0: none), factor, max, forgive,
// level (at least 1)
int trl_strict_encode(const trl_script_zone_t *zone,
                      const trl_penalty_t *penalty, int dry_run,
                      const trl_bytes_t *name, trl_argv_t *argv) noexcept {
    if (!start(argv) || !valid_zone(zone) || penalty == nullptr
        || name == nullptr)
    {
        return TRL_ERROR;
    }
    Args a(argv);
    bool ok = a.bytes(name->data, name->len) && zone_args(a, zone)
              && a.number(dry_run ? 0 : penalty->base_ms)
              && a.factor(penalty->factor) && a.number(penalty->max_ms)
              && a.number(penalty->forgive_ms)
              && a.number(penalty->level > 1 ? penalty->level : 1);
    return done(argv, ok);
}

int trl_release_encode(const trl_bytes_t *name, uint64_t cell,
                       trl_argv_t *argv) noexcept {
    if (!start(argv) || name == nullptr) {
        return TRL_ERROR;
    }
    Args a(argv);
    return done(argv, a.bytes(name->data, name->len) && a.number(cell));
}

int trl_reset_encode(const trl_bytes_t *name, trl_argv_t *argv) noexcept {
    if (!start(argv) || name == nullptr) {
        return TRL_ERROR;
    }
    Args a(argv);
    return done(argv, a.bytes(name->data, name->len));
}

// <prefix>lists; now, a new hash's epoch, the number of puts, id and value
// per put, the ids to delete
int trl_lists_encode(const char *prefix, size_t prefix_len, uint64_t now_ms,
                     uint64_t epoch, const trl_list_entry_t *puts,
                     size_t nputs, const uint64_t *dels, size_t ndels,
                     trl_argv_t *argv) noexcept {
    if (!start(argv) || (prefix == nullptr && prefix_len > 0)
        || (puts == nullptr && nputs > 0) || (dels == nullptr && ndels > 0)
        || epoch == 0)
    {
        return TRL_ERROR;
    }
    Args a(argv);
    bool ok = a.written(prefix_len + 5, [&](char *p, size_t) {
        if (prefix_len) {
            std::memcpy(p, prefix, prefix_len);
        }
        std::memcpy(p + prefix_len, "lists", 5);
        return prefix_len + 5;
    });
    ok = ok && a.number(now_ms) && a.number(epoch) && a.number(nputs);
    for (size_t i = 0; ok && i < nputs; i++) {
        // trl_list_encode writes a NUL after the value: one byte more
        ok = a.number(puts[i].id)
             && a.written(TRL_LIST_VALUE_MAX, [&](char *p, size_t max) {
                    return trl_list_encode(&puts[i], p, max);
                });
    }
    for (size_t i = 0; ok && i < ndels; i++) {
        ok = a.number(dels[i]);
    }
    return done(argv, ok);
}

// key; "1" for the body too, else "0"
int trl_rep_read_encode(const char *prefix, size_t prefix_len,
                        const char *name, size_t name_len, int with_body,
                        trl_argv_t *argv) noexcept {
    if (!start(argv)) {
        return TRL_ERROR;
    }
    Args a(argv);
    return done(argv, rep_key(a, prefix, prefix_len, name, name_len)
                      && a.bytes(with_body ? "1" : "0", 1));
}

// key; version, checksum (16 hex digits), body, at, node
int trl_rep_publish_encode(const char *prefix, size_t prefix_len,
                           const char *name, size_t name_len,
                           const trl_rep_remote_t *upload, uint64_t at_s,
                           const char *node, size_t node_len,
                           trl_argv_t *argv) noexcept {
    static const char hex[] = "0123456789abcdef";
    if (!start(argv) || upload == nullptr || upload->version == 0
        || (upload->body.data == nullptr && upload->body.len > 0)
        || (node == nullptr && node_len > 0))
    {
        return TRL_ERROR;
    }
    Args a(argv);
    bool ok = rep_key(a, prefix, prefix_len, name, name_len)
              && a.number(upload->version)
              && a.written(16, [&](char *p, size_t) {
                     for (int i = 0; i < 16; i++) {
                         p[i] = hex[(upload->checksum >> (60 - 4 * i)) & 0xf];
                     }
                     return size_t{16};
                 })
              && a.bytes(upload->body.len ? upload->body.data : "",
                         upload->body.len)
              && a.number(at_s) && a.bytes(node_len ? node : "", node_len);
    return done(argv, ok);
}

}  // extern "C"
