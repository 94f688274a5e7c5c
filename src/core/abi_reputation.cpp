// abi_reputation.cpp - the C ABI of IP reputation (trl_reputation.h); like
// abi.cpp, every entry point runs in guard().
#include <cstring>
#include <memory>

#include "guard.hpp"
#include "reputation.hpp"
#include "reputation_table.hpp"
#include "reputation_terms.hpp"
#include "trl_core.h"

namespace {

using trl::ErrorOut;
using trl::guard;
using trl::guard_void;
using trl::put_error;

trl::RepRoot &root(trl_rep_t *rep) {
    return *reinterpret_cast<trl::RepRoot *>(rep);
}

const trl::RepRoot &root(const trl_rep_t *rep) {
    return *reinterpret_cast<const trl::RepRoot *>(rep);
}

bool slot_ok(int slot) { return slot >= 0 && slot < TRL_REP_MAX_LISTS; }

void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    std::memcpy(dst, src, n);
    dst[n] = '\0';
}

// A grammar entry point: parse(text, len, out, why).
template <typename T, typename Parse>
int parse_entry(const char *text, size_t len, T *out, char *err,
                size_t errlen, Parse &&parse) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        T v{};
        if (text == nullptr || out == nullptr) {
            put_error(err, errlen, "nothing given");
            return TRL_ERROR;
        }
        if (!parse(text, len, v, why)) {
            put_error(err, errlen, why);
            return TRL_ERROR;
        }
        *out = v;
        return TRL_OK;
    });
}

}  // namespace

extern "C" {

int trl_cidr_parse(const char *text, size_t len, trl_cidr_t *out, char *err,
                   size_t errlen) noexcept {
    return parse_entry(text, len, out, err, errlen,
                       [](const char *t, size_t n, trl_cidr_t &c,
                          std::string &why) {
                           return trl::cidr_parse(t, n, c, why);
                       });
}

trl_rep_build_t *trl_rep_parse(const char *text, size_t len,
                               const char *source,
                               const trl_rep_rules_t *rules, char *err,
                               size_t errlen) noexcept {
    ErrorOut out{err, errlen, "reading the reputation list"};
    return guard<trl_rep_build_t *>(nullptr, out, [&] {
        auto b = std::make_unique<trl::Build>();
        std::string why;
        if (text == nullptr && len != 0) {
            put_error(err, errlen, "no text");
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        if (!trl::rep_parse(text ? text : "", len, source, rules, *b, why)) {
            put_error(err, errlen, why);
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        return b.release();
    });
}

trl_rep_build_t *trl_rep_build_ranges(const trl_rep_range_t *r, size_t n,
                                      char *err, size_t errlen) noexcept {
    return guard<trl_rep_build_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        auto b = std::make_unique<trl::Build>();
        std::string why;
        if (r == nullptr && n != 0) {
            put_error(err, errlen, "no ranges");
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        if (!trl::build_ranges(r, n, *b, why)) {
            put_error(err, errlen, why);
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        return b.release();
    });
}

void trl_rep_build_info(const trl_rep_build_t *b,
                        trl_rep_build_info_t *info) noexcept {
    guard_void([&] {
        std::memset(info, 0, sizeof(*info));
        if (b == nullptr) {
            return;
        }
        info->lines = b->lines;
        info->entries = b->entries;
        info->ranges4 = b->v4.size();
        info->ranges6 = b->v6.size();
        info->dropped_trusted = b->dropped_trusted;
        info->dropped_wide = b->dropped_wide;
        copy_str(info->dropped_example, sizeof(info->dropped_example),
                 b->example.c_str());
        info->checksum = b->checksum;
        info->bytes = trl::gen_bytes(*b);
    });
}

trl_rep_build_t *trl_rep_merge(const trl_rep_build_t *a,
                               const trl_rep_build_t *b) noexcept {
    return guard<trl_rep_build_t *>(nullptr, [&] {
        auto out = std::make_unique<trl::Build>();
        trl::Build empty;
        trl::build_merge(a ? *a : empty, b ? *b : empty, *out);
        return out.release();
    });
}

void trl_rep_build_free(trl_rep_build_t *b) noexcept { delete b; }

size_t trl_rep_wire_size(const trl_rep_build_t *b) noexcept {
    return guard(size_t{0}, [&] { return b ? trl::wire_size(*b) : 0; });
}

size_t trl_rep_wire_encode(const trl_rep_build_t *b, void *buf,
                           size_t len) noexcept {
    return guard(size_t{0}, [&] {
        return b ? trl::wire_encode(*b, static_cast<uint8_t *>(buf), len)
                 : 0;
    });
}

trl_rep_build_t *trl_rep_wire_decode(const void *buf, size_t len, char *err,
                                     size_t errlen) noexcept {
    ErrorOut out{err, errlen, "decoding the reputation list"};
    return guard<trl_rep_build_t *>(nullptr, out, [&] {
        auto b = std::make_unique<trl::Build>();
        std::string why;
        if (!trl::wire_decode(static_cast<const uint8_t *>(buf), len, *b,
                              why)) {
            put_error(err, errlen, why);
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        return b.release();
    });
}

trl_rep_t *trl_rep_create(void *mem, size_t size, char *err,
                          size_t errlen) noexcept {
    return guard<trl_rep_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::RepRoot *r = trl::rep_create(mem, size, why);
        if (r == nullptr) {
            put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_rep_t *>(r);
    });
}

trl_rep_t *trl_rep_attach(void *mem, size_t size, char *err,
                          size_t errlen) noexcept {
    return guard<trl_rep_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::RepRoot *r = trl::rep_attach(mem, size, why);
        if (r == nullptr) {
            put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_rep_t *>(r);
    });
}

int trl_rep_configure(trl_rep_t *rep, const trl_rep_decl_t *decl, size_t n,
                      int *slots, uint64_t now_ms, char *err,
                      size_t errlen) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        if (rep == nullptr || (decl == nullptr && n != 0)) {
            put_error(err, errlen, "no reputation table");
            return TRL_ERROR;
        }
        if (!trl::rep_configure(root(rep), decl, n, slots, now_ms, why)) {
            put_error(err, errlen, why);
            return TRL_ERROR;
        }
        return TRL_OK;
    });
}

int trl_rep_install(trl_rep_t *rep, int slot, const trl_rep_build_t *b,
                    uint64_t version, const char *origin, unsigned flags,
                    uint64_t now_ms, char *err, size_t errlen) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        if (rep == nullptr || b == nullptr) {
            put_error(err, errlen, "no reputation table or list");
            return TRL_ERROR;
        }
        if (!trl::rep_install(root(rep), slot, *b, version, origin, flags,
                              now_ms, why)) {
            put_error(err, errlen, why);
            return TRL_ERROR;
        }
        return TRL_OK;
    });
}

trl_rep_build_t *trl_rep_extract(trl_rep_t *rep, int slot) noexcept {
    return guard<trl_rep_build_t *>(nullptr, [&] {
        auto b = std::make_unique<trl::Build>();
        if (rep == nullptr || !trl::rep_extract(root(rep), slot, *b)) {
            return static_cast<trl_rep_build_t *>(nullptr);
        }
        return b.release();
    });
}

void trl_rep_set_error(trl_rep_t *rep, int slot, const char *why,
                       uint64_t now_ms) noexcept {
    guard_void([&] {
        if (rep == nullptr || !slot_ok(slot)) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        trl::RepSlot &s = r.slot[slot];
        copy_str(s.error, sizeof(s.error), why ? why : "");
        s.error_ms = s.error[0] != '\0' ? now_ms : 0;
    });
}

void trl_rep_published(trl_rep_t *rep, int slot, uint64_t version) noexcept {
    guard_void([&] {
        if (rep == nullptr || !slot_ok(slot)) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        if (r.slot[slot].version == version) {
            r.slot[slot].unpublished = 0;
        }
    });
}

void trl_rep_seen(trl_rep_t *rep, int slot, uint64_t version,
                  uint64_t checksum) noexcept {
    guard_void([&] {
        if (rep == nullptr || !slot_ok(slot)) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        r.slot[slot].redis_version = version;
        r.slot[slot].redis_checksum = checksum;
    });
}

void trl_rep_reclaim(trl_rep_t *rep, uint64_t now_ms) noexcept {
    guard_void([&] {
        if (rep == nullptr) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        trl::reclaim(r, now_ms);
    });
}

int trl_rep_lookup(const trl_rep_t *rep, int family, const uint8_t *addr,
                   trl_rep_match_t *m) noexcept {
    return trl_rep_lookup_some(rep, UINT64_MAX, family, addr, m);
}

int trl_rep_lookup_some(const trl_rep_t *rep, uint64_t want, int family,
                        const uint8_t *addr, trl_rep_match_t *m) noexcept {
    return guard(0, [&] {
        trl_rep_match_t none;
        trl_rep_match_t &out = m != nullptr ? *m : none;
        if (rep == nullptr) {
            std::memset(&out, 0, sizeof(out));
            return 0;
        }
        return trl::rep_lookup(root(rep), want, family, addr, out);
    });
}

void trl_rep_count(trl_rep_t *rep, const trl_rep_match_t *m) noexcept {
    guard_void([&] {
        if (rep == nullptr || m == nullptr) {
            return;
        }
        uint64_t mask = m->lists | m->dry_run;
        for (; mask != 0; mask &= mask - 1) {
            root(rep).slot[__builtin_ctzll(mask)].matched.fetch_add(
                1, std::memory_order_relaxed);
        }
    });
}

size_t trl_rep_names(const trl_rep_t *rep, uint64_t mask, char *buf,
                     size_t len) noexcept {
    return guard(size_t{0}, [&] {
        size_t n = 0;
        if (rep == nullptr || buf == nullptr) {
            return n;
        }
        auto put = [&](const char *p, size_t k) {
            size_t m = k < len - n ? k : len - n;
            std::memcpy(buf + n, p, m);
            n += m;
        };
        bool first = true;
        for (; mask != 0 && n < len; mask &= mask - 1) {
            const trl::RepSlot &s = root(rep).slot[__builtin_ctzll(mask)];
            if (!first) {
                put(",", 1);
            }
            put(s.name, strnlen(s.name, sizeof(s.name)));
            first = false;
        }
        if (n < len) {
            buf[n] = '\0';
        }
        return n;
    });
}

int trl_rep_due(trl_rep_t *rep, int channel, uint64_t now_ms,
                uint64_t interval_ms) noexcept {
    return guard(0, [&] {
        if (rep == nullptr || channel < 0 || channel > 1) {
            return 0;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        // a clock set back does not stop the checks for longer than one
        // interval
        if (now_ms < r.due_ms[channel]
            && r.due_ms[channel] - now_ms <= interval_ms) {
            return 0;
        }
        r.due_ms[channel] = now_ms + interval_ms;
        return 1;
    });
}

int trl_rep_file_changed(trl_rep_t *rep, int slot,
                         const trl_rep_file_id_t *id) noexcept {
    return guard(0, [&] {
        if (rep == nullptr || id == nullptr || !slot_ok(slot)) {
            return 0;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        trl::RepSlot &s = r.slot[slot];
        bool same = s.file_known && s.file.dev == id->dev
                    && s.file.ino == id->ino && s.file.size == id->size
                    && s.file.mtime_ns == id->mtime_ns;
        s.file = *id;
        s.file_known = 1;
        return same ? 0 : 1;
    });
}

int trl_rep_info(trl_rep_t *rep, int slot,
                 trl_rep_list_info_t *out) noexcept {
    return guard(TRL_ERROR, [&] {
        if (rep == nullptr || out == nullptr || !slot_ok(slot)) {
            return TRL_ERROR;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        const trl::RepSlot &s = r.slot[slot];
        if (!s.in_use) {
            return TRL_ERROR;
        }
        std::memset(out, 0, sizeof(*out));
        copy_str(out->name, sizeof(out->name), s.name);
        out->score = s.score.load(std::memory_order_relaxed);
        out->flags = s.flags.load(std::memory_order_relaxed);
        out->unpublished = s.unpublished;
        out->version = s.version;
        out->checksum = s.checksum;
        out->ranges4 = s.ranges4;
        out->ranges6 = s.ranges6;
        out->entries = s.entries;
        out->bytes = s.bytes;
        out->dropped_trusted = s.dropped_trusted;
        out->dropped_wide = s.dropped_wide;
        copy_str(out->dropped_example, sizeof(out->dropped_example),
                 s.example);
        out->loaded_ms = s.loaded_ms;
        out->load_ms = s.load_ms;
        out->matched = s.matched.load(std::memory_order_relaxed);
        copy_str(out->origin, sizeof(out->origin), s.origin);
        copy_str(out->error, sizeof(out->error), s.error);
        out->error_ms = s.error_ms;
        out->redis_version = s.redis_version;
        out->redis_checksum = s.redis_checksum;
        return TRL_OK;
    });
}

void trl_rep_set_load_ms(trl_rep_t *rep, int slot, uint64_t ms) noexcept {
    guard_void([&] {
        if (rep == nullptr || !slot_ok(slot)) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        r.slot[slot].load_ms = ms;
    });
}

void trl_rep_zone_info(trl_rep_t *rep, trl_rep_zone_info_t *out) noexcept {
    guard_void([&] {
        std::memset(out, 0, sizeof(*out));
        if (rep == nullptr) {
            return;
        }
        trl::RepRoot &r = root(rep);
        trl::RepHeld held(r);
        out->size = r.size;
        out->used = r.used;
        out->retired = r.retired_bytes;
        out->lists = r.nlists;
        out->heap = r.size - r.heap_off;
    });
}

int trl_rep_scale_parse(const char *text, size_t len, trl_rep_terms_t *out,
                        char *err, size_t errlen) noexcept {
    return parse_entry(text, len, out, err, errlen, trl::scale_parse);
}

int trl_rep_level_parse(const char *text, size_t len, trl_rep_terms_t *out,
                        char *err, size_t errlen) noexcept {
    return parse_entry(text, len, out, err, errlen, trl::level_parse);
}

int trl_rep_score_parse(const char *text, size_t len, uint32_t *score,
                        char *err, size_t errlen) noexcept {
    return parse_entry(text, len, score, err, errlen, trl::score_parse);
}

int trl_rep_name_check(const char *text, size_t len, char *err,
                       size_t errlen) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        if (text == nullptr || !trl::name_check(text, len, why)) {
            put_error(err, errlen,
                      why.empty() ? std::string("no name") : why);
            return TRL_ERROR;
        }
        return TRL_OK;
    });
}

uint32_t trl_rep_scale_limit(uint32_t n, uint32_t thousandths) noexcept {
    return guard(uint32_t{1}, [&] { return trl::scale_limit(n, thousandths); });
}

}  // extern "C"
