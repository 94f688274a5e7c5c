// rep_micro.cpp - micro-benchmark of the reputation table (make rep-micro):
// random lists of 1k, 100k and 1M disjoint IPv4 ranges, written as text
// (addresses, "a-b" ranges, CIDRs), then parsed, installed and looked up
// through the core's C ABI.  Reports the parse and install times, the
// table's bytes (and per range), and the nanoseconds of a lookup (random
// addresses, half of them listed); then checks that a 16 MiB block holds
// the 1M list with a second generation installed beside it (a
// replacement).  Not a test: numbers for the README and the issue.
//
//   build/rep_micro [SEED]      (make rep-micro REP_SEED=...)
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "trl_core.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0)
        .count();
}

// The built-in trusted ranges (trl_reputation.h): a random list avoids
// them, or the parser would drop some of its entries.
bool trusted(uint32_t a) {
    static const struct {
        uint32_t net, bits;
    } t[] = {{0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10},
             {0x7f000000, 8},  {0xa9fe0000, 16}, {0xac100000, 12},
             {0xc0a80000, 16}};
    for (const auto &r : t) {
        if ((a >> (32 - r.bits)) == (r.net >> (32 - r.bits))) {
            return true;
        }
    }
    return false;
}

struct Range {
    uint32_t s, e;
};

void put_addr(std::string &out, uint32_t a) {
    char buf[16];
    int n = std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a >> 24,
                          (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
    out.append(buf, static_cast<size_t>(n));
}

// n disjoint, non-adjacent ranges outside the trusted ones, and their
// text: a third single addresses, a third "a-b", a third CIDRs.
std::vector<Range> random_list(std::mt19937_64 &rng, size_t n,
                               std::string &text) {
    std::vector<uint32_t> starts;
    starts.reserve(n + n / 8);
    while (starts.size() < n + n / 8) {
        uint32_t a = static_cast<uint32_t>(rng()) & ~UINT32_C(0xff);
        if (!trusted(a) && !trusted(a | 0xff) && a < 0xffffff00) {
            starts.push_back(a);
        }
    }
    std::sort(starts.begin(), starts.end());
    // distinct and never adjacent (a /24 right before would merge)
    size_t kept = 0;
    for (size_t i = 0; i < starts.size(); i++) {
        if (kept == 0 || starts[i] - starts[kept - 1] > 0x100) {
            starts[kept++] = starts[i];
        }
    }
    starts.resize(std::min(kept, n));

    std::vector<Range> r;
    r.reserve(n);
    text.clear();
    text.reserve(n * 24);
    text += "# rep_micro\n";
    for (size_t i = 0; i < starts.size(); i++) {
        uint32_t s = starts[i];
        Range x{s, s};
        switch (i % 3) {
        case 0:
            put_addr(text, s);
            break;
        case 1:
            x.e = s + static_cast<uint32_t>(rng() % 200);
            put_addr(text, s);
            text += '-';
            put_addr(text, x.e);
            break;
        default:
            x.e = s + 0xff;                 // a /24 (starts are /24s)
            put_addr(text, s);
            text += "/24";
            break;
        }
        text += '\n';
        r.push_back(x);
    }
    return r;
}

struct Block {
    void *mem;
    size_t size;
    explicit Block(size_t n) : size(n) {
        mem = mmap(nullptr, n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            std::perror("mmap");
            std::exit(1);
        }
    }
    ~Block() { munmap(mem, size); }
};

constexpr size_t kBlock = 16u << 20;
constexpr uint64_t kNow = UINT64_C(1800000000000);

trl_rep_t *table(Block &b, int *slot) {
    char err[256];
    trl_rep_t *rep = trl_rep_create(b.mem, b.size, err, sizeof(err));
    trl_rep_decl_t decl;
    std::memset(&decl, 0, sizeof(decl));
    std::strcpy(decl.name, "bench");
    decl.score = 50;
    if (rep == nullptr
        || trl_rep_configure(rep, &decl, 1, slot, kNow, err, sizeof(err))
               != TRL_OK) {
        std::fprintf(stderr, "table: %s\n", err);
        std::exit(1);
    }
    return rep;
}

// ns per lookup of addrs (each looked up `rounds` times).
double lookup_ns(const trl_rep_t *rep, const std::vector<uint32_t> &addrs,
                 int rounds, uint64_t &hits) {
    hits = 0;
    auto t0 = Clock::now();
    for (int k = 0; k < rounds; k++) {
        for (uint32_t a : addrs) {
            uint8_t b[4] = {static_cast<uint8_t>(a >> 24),
                            static_cast<uint8_t>(a >> 16),
                            static_cast<uint8_t>(a >> 8),
                            static_cast<uint8_t>(a)};
            trl_rep_match_t m;
            hits += static_cast<uint64_t>(trl_rep_lookup(rep, 4, b, &m));
        }
    }
    return ms_since(t0) * 1e6 / (static_cast<double>(addrs.size()) * rounds);
}

}  // namespace

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10)
                             : static_cast<uint64_t>(
                                   Clock::now().time_since_epoch().count());
    std::printf("rep_micro: seed %" PRIu64 " (build/rep_micro %" PRIu64
                " repeats this run)\n\n",
                seed, seed);
    std::printf("%9s %9s %10s %10s %11s %10s %10s %10s\n", "ranges",
                "parsed", "parse ms", "install ms", "table B", "B/range",
                "ns/lookup", "ns (none)");

    std::mt19937_64 rng(seed);
    trl_rep_rules_t rules = {nullptr, 0, 8, 32};
    int failures = 0;

    for (size_t n : {size_t{1000}, size_t{100000}, size_t{1000000}}) {
        std::string text;
        std::vector<Range> ranges = random_list(rng, n, text);
        char err[512];

        auto t0 = Clock::now();
        trl_rep_build_t *b = trl_rep_parse(text.data(), text.size(),
                                           "bench", &rules, err, sizeof(err));
        double parse_ms = ms_since(t0);
        if (b == nullptr) {
            std::fprintf(stderr, "parse: %s\n", err);
            return 1;
        }
        trl_rep_build_info_t bi;
        trl_rep_build_info(b, &bi);

        Block block(kBlock);
        int slot;
        trl_rep_t *rep = table(block, &slot);

        // addresses: half inside a listed range, half anywhere
        std::vector<uint32_t> addrs(1u << 20);
        for (size_t i = 0; i < addrs.size(); i++) {
            if (i & 1) {
                const Range &r = ranges[rng() % ranges.size()];
                addrs[i] = r.s + static_cast<uint32_t>(rng() % (r.e - r.s + 1));
            } else {
                addrs[i] = static_cast<uint32_t>(rng());
            }
        }
        uint64_t hits;
        double none_ns = lookup_ns(rep, addrs, 3, hits);   // no table yet

        t0 = Clock::now();
        if (trl_rep_install(rep, slot, b, 0, "file", 0, kNow, err,
                            sizeof(err)) != TRL_OK) {
            std::fprintf(stderr, "install: %s\n", err);
            return 1;
        }
        double install_ms = ms_since(t0);
        trl_rep_list_info_t li;
        trl_rep_info(rep, slot, &li);

        lookup_ns(rep, addrs, 1, hits);                     // warm
        double ns = lookup_ns(rep, addrs, 3, hits);
        uint64_t want = 0;
        for (size_t i = 0; i < addrs.size(); i++) {
            if (i & 1) {
                want++;
            }
        }
        if (hits < want * 3) {
            std::printf("FAIL: %" PRIu64 " hits, at least %" PRIu64
                        " expected\n", hits, want * 3);
            failures++;
        }

        std::printf("%9zu %9" PRIu64 " %10.1f %10.1f %11" PRIu64
                    " %10.2f %10.1f %10.1f\n",
                    n, bi.ranges4, parse_ms, install_ms, li.bytes,
                    static_cast<double>(li.bytes)
                        / static_cast<double>(bi.ranges4),
                    ns, none_ns);

        if (n == 1000000) {
            // a replacement: a second 1M generation beside the first
            std::string text2;
            std::vector<Range> r2 = random_list(rng, n, text2);
            trl_rep_build_t *b2 = trl_rep_parse(text2.data(), text2.size(),
                                                "bench2", &rules, err,
                                                sizeof(err));
            int rc = b2 ? trl_rep_install(rep, slot, b2, 0, "file", 0,
                                          kNow + 1, err, sizeof(err))
                        : TRL_ERROR;
            trl_rep_zone_info_t zi;
            trl_rep_zone_info(rep, &zi);
            std::printf("\n16 MiB block, 1M ranges and a replacement beside "
                        "it: %s (used %" PRIu64 " of %" PRIu64
                        " bytes, %" PRIu64 " retired)%s%s\n",
                        rc == TRL_OK ? "fits" : "DOES NOT FIT", zi.used,
                        zi.size, zi.retired, rc == TRL_OK ? "" : ": ",
                        rc == TRL_OK ? "" : err);
            if (rc != TRL_OK || zi.retired == 0) {
                failures++;
            }
            const Range &x = r2[r2.size() / 2];
            uint8_t a[4] = {static_cast<uint8_t>(x.s >> 24),
                            static_cast<uint8_t>(x.s >> 16),
                            static_cast<uint8_t>(x.s >> 8),
                            static_cast<uint8_t>(x.s)};
            trl_rep_match_t m;
            if (trl_rep_lookup(rep, 4, a, &m) != 1) {
                std::printf("FAIL: the replacement does not answer\n");
                failures++;
            }
            trl_rep_build_free(b2);
        }
        trl_rep_build_free(b);
    }
    return failures == 0 ? 0 : 1;
}
