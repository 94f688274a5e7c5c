// scripts_decode.cpp - the scripts' replies (see trl_scripts.h and, for
// what each script answers, sync.cpp).  The counting scripts answer with
// their integers in one string, "n n n ...": decimal, non-negative, one
// space between two.
#include <charconv>
#include <cstdint>
#include <limits>

#include "trl_scripts.h"

namespace {

constexpr size_t kPublishInts = 5;     // per key
constexpr size_t kAskInts = 8;         // per key
constexpr size_t kStrictInts = 8;

// Reads a reply's integers one by one.
class Cursor {
  public:
    Cursor(const char *text, size_t len)
        : p_(text), end_(text ? text + len : text) {}

    bool next(uint64_t &x) {
        if (p_ == nullptr) {
            return false;
        }
        if (!first_) {
            if (p_ == end_ || *p_ != ' ') {
                return false;
            }
            p_++;
        }
        first_ = false;
        if (p_ == end_ || *p_ < '0' || *p_ > '9') {
            return false;                   // a sign, a space, nothing
        }
        auto r = std::from_chars(p_, end_, x);
        if (r.ec != std::errc()) {
            return false;                   // out of range
        }
        p_ = r.ptr;
        return true;
    }

    bool done() const { return p_ != nullptr && p_ == end_; }

  private:
    const char *p_;
    const char *end_;
    bool first_ = true;
};

uint32_t u32(uint64_t v) {
    return v > std::numeric_limits<uint32_t>::max()
               ? std::numeric_limits<uint32_t>::max()
               : static_cast<uint32_t>(v);
}

// "now", then per integers for each of n keys.  The reply is read twice:
// once to check all of it (check(v) for each key's), once to take it
// (take(now, i, v)), so nothing is filled from a reply that turns out
// malformed further on.
template <typename Check, typename Take>
bool per_key(const char *text, size_t len, size_t n, size_t per,
             Check check, Take take) {
    uint64_t now = 0, v[8];
    if (n == 0 || per > 8) {
        return false;
    }
    for (int pass = 0; pass < 2; pass++) {
        Cursor c(text, len);
        if (!c.next(now)) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < per; k++) {
                if (!c.next(v[k])) {
                    return false;
                }
            }
            if (pass == 0 && !check(v)) {
                return false;
            }
            if (pass == 1) {
                take(now, i, v);
            }
        }
        if (!c.done()) {
            return false;
        }
    }
    return true;
}

// a decimal number of 1 to 19 digits; 0 for anything else
uint64_t list_number(const char *s, size_t len) {
    if (s == nullptr || len == 0 || len > 19) {
        return 0;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        n = n * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    return n;
}

}  // namespace

extern "C" {

// now; per key: total, free_in, reset_in, penalty left, violations
int trl_publish_decode(const char *reply, size_t len,
                       const trl_publish_key_t *keys, size_t n,
                       trl_sync_read_t *reads) noexcept {
    if (keys == nullptr || reads == nullptr) {
        return TRL_ERROR;
    }
    auto check = [](const uint64_t *) { return true; };
    auto take = [&](uint64_t now, size_t i, const uint64_t *v) {
        trl_sync_read_t &r = reads[i];
        r.stamp_ms = now;
        r.total = u32(v[0]);
        r.free_in_ms = u32(v[1]);
        r.reset_in_ms = u32(v[2]);
        r.penalty_in_ms = u32(v[3]);
        r.violations = u32(v[4]);
        r.published = keys[i].delta > keys[i].leased
                          ? u32(keys[i].delta - keys[i].leased) : 0;
    };
    return per_key(reply, len, n, kPublishInts, check, take) ? TRL_OK
                                                             : TRL_ERROR;
}

// now; per key: admitted, total, free_in, reset_in, penalty left,
// violations, cell, share
int trl_ask_decode(const trl_script_zone_t *zone, const char *reply,
                   size_t len, size_t n, trl_ask_answer_t *answers) noexcept {
    if (zone == nullptr || answers == nullptr) {
        return TRL_ERROR;
    }
    uint32_t lease_ms = trl_lease_ms(zone->window_ms);
    auto check = [](const uint64_t *v) { return v[0] <= 1; };
    auto take = [&](uint64_t now, size_t i, const uint64_t *v) {
        trl_ask_answer_t &a = answers[i];
        a.reply.stamp_ms = now;
        a.reply.admitted = static_cast<uint8_t>(v[0]);
        a.reply.total = u32(v[1]);
        a.reply.free_in_ms = u32(v[2]);
        a.reply.reset_in_ms = u32(v[3]);
        a.reply.penalty_in_ms = u32(v[4]);
        a.reply.violations = u32(v[5]);
        a.cell = v[6];
        a.reply.lease = u32(v[7]);
        a.reply.lease_ms = lease_ms;
    };
    return per_key(reply, len, n, kAskInts, check, take) ? TRL_OK
                                                         : TRL_ERROR;
}

// admitted, total, free_in, reset_in, cell, violations, penalty (0, 1:
// serving, 2: started), block left
int trl_strict_decode(const char *reply, size_t len,
                      trl_strict_answer_t *answer) noexcept {
    uint64_t v[kStrictInts];
    Cursor c(reply, len);
    for (size_t k = 0; k < kStrictInts; k++) {
        if (!c.next(v[k])) {
            return TRL_ERROR;
        }
    }
    if (answer == nullptr || !c.done() || v[0] > 1
        || v[6] > TRL_STRICT_PENALTY_STARTED)
    {
        return TRL_ERROR;
    }
    answer->reply.admitted = static_cast<uint8_t>(v[0]);
    answer->reply.total = u32(v[1]);
    answer->reply.free_in_ms = u32(v[2]);
    answer->reply.reset_in_ms = u32(v[3]);
    answer->cell = v[4];
    answer->reply.violations = u32(v[5]);
    answer->reply.penalty = static_cast<uint8_t>(v[6]);
    answer->reply.block_in_ms = u32(v[7]);
    return TRL_OK;
}

// the epoch, then id and value per entry
int trl_lists_decode(const trl_bytes_t *elements, size_t nelements,
                     uint64_t *epoch, trl_list_entry_t *entries, size_t max,
                     size_t *nentries) noexcept {
    if (elements == nullptr || nelements < 1 || epoch == nullptr
        || nentries == nullptr || (entries == nullptr && max > 0))
    {
        return TRL_ERROR;
    }
    uint64_t e = list_number(elements[0].data, elements[0].len);
    if (e == 0) {
        return TRL_ERROR;
    }
    size_t n = 0;
    for (size_t i = 1; i + 1 < nelements && n < max; i += 2) {
        const trl_bytes_t &name = elements[i], &value = elements[i + 1];
        if (name.data == nullptr || value.data == nullptr) {
            continue;
        }
        uint64_t id = list_number(name.data, name.len);
        if (trl_list_decode(id, value.data, value.len, &entries[n])
            == TRL_OK)
        {
            n++;
        }
    }
    *epoch = e;
    *nentries = n;
    return TRL_OK;
}

// version and checksum (and body), each nil when the hash has none
int trl_rep_remote_decode(const trl_bytes_t *elements, size_t nelements,
                          trl_rep_remote_t *out) noexcept {
    if (elements == nullptr || out == nullptr
        || (nelements != 2 && nelements != 3))
    {
        return TRL_ERROR;
    }
    trl_rep_remote_t r{};
    if (elements[0].data == nullptr) {
        *out = r;                           // nothing uploaded yet
        return TRL_OK;
    }
    r.version = list_number(elements[0].data, elements[0].len);
    const trl_bytes_t &c = elements[1];
    if (r.version == 0 || c.data == nullptr || c.len != 16) {
        return TRL_ERROR;
    }
    for (size_t i = 0; i < 16; i++) {
        char h = c.data[i];
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) {
            return TRL_ERROR;
        }
        r.checksum = r.checksum << 4 | static_cast<uint64_t>(d);
    }
    if (nelements == 3) {
        if (elements[2].data == nullptr) {
            return TRL_ERROR;
        }
        r.body = elements[2];
    }
    r.present = 1;
    *out = r;
    return TRL_OK;
}

}  // extern "C"
