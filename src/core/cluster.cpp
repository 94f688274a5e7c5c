// cluster.cpp - Redis Cluster arithmetic (see trl_cluster.h): hash slots,
// redirections and the slot map.
#include <cstring>
#include <new>
#include <vector>

#include "guard.hpp"
#include "trl_cluster.h"

namespace {

// CRC16-XMODEM (poly 0x1021, init 0), as the Redis Cluster specification
// defines the key slot; table-driven, built at compile time.
struct Crc16Table {
    uint16_t v[256];
    constexpr Crc16Table() : v() {
        for (unsigned i = 0; i < 256; i++) {
            uint16_t crc = static_cast<uint16_t>(i << 8);
            for (int b = 0; b < 8; b++) {
                crc = (crc & 0x8000)
                          ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                          : static_cast<uint16_t>(crc << 1);
            }
            v[i] = crc;
        }
    }
};

constexpr Crc16Table kCrc16;

uint16_t crc16(const unsigned char *p, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc = static_cast<uint16_t>((crc << 8)
                                    ^ kCrc16.v[((crc >> 8) ^ p[i]) & 0xff]);
    }
    return crc;
}

struct Node {
    char host[TRL_CLUSTER_HOST_MAX];
    unsigned port;
};

constexpr uint8_t kNone = 0xff;

bool read_uint(const char *&p, const char *end, unsigned max,
               unsigned &value) {
    const char *start = p;
    value = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        value = value * 10 + static_cast<unsigned>(*p - '0');
        if (value > max) {
            return false;
        }
        p++;
    }
    return p != start;
}

}  // namespace

struct trl_slot_map_s {
    std::vector<Node> nodes;
    uint8_t slot[TRL_CLUSTER_SLOTS];

    int node_of(const char *host, size_t host_len, unsigned port) {
        if (host_len >= TRL_CLUSTER_HOST_MAX || port == 0 || port > 65535) {
            return -1;
        }
        for (size_t i = 0; i < nodes.size(); i++) {
            if (nodes[i].port == port && std::strlen(nodes[i].host) == host_len
                && std::memcmp(nodes[i].host, host, host_len) == 0) {
                return static_cast<int>(i);
            }
        }
        if (nodes.size() >= TRL_CLUSTER_NODES_MAX) {
            return -1;
        }
        Node n;
        std::memcpy(n.host, host, host_len);
        n.host[host_len] = '\0';
        n.port = port;
        nodes.push_back(n);
        return static_cast<int>(nodes.size() - 1);
    }
};

extern "C" {

unsigned trl_cluster_slot(const void *key, size_t len) noexcept {
    const unsigned char *k = static_cast<const unsigned char *>(key);
    const void *open = len ? std::memchr(k, '{', len) : nullptr;
    if (open != nullptr) {
        size_t s = static_cast<size_t>(static_cast<const unsigned char *>(open)
                                       - k) + 1;
        const void *close = s < len ? std::memchr(k + s, '}', len - s)
                                    : nullptr;
        if (close != nullptr) {
            size_t e = static_cast<size_t>(
                static_cast<const unsigned char *>(close) - k);
            if (e > s) {
                return crc16(k + s, e - s) & (TRL_CLUSTER_SLOTS - 1);
            }
        }
    }
    return crc16(k, len) & (TRL_CLUSTER_SLOTS - 1);
}

int trl_cluster_redirect(const char *text, size_t len, unsigned *slot,
                         char host[TRL_CLUSTER_HOST_MAX],
                         unsigned *port) noexcept {
    const char *p = text;
    const char *end = text + len;
    int kind;

    if (len > 6 && std::memcmp(p, "MOVED ", 6) == 0) {
        kind = TRL_CLUSTER_MOVED;
        p += 6;
    } else if (len > 4 && std::memcmp(p, "ASK ", 4) == 0) {
        kind = TRL_CLUSTER_ASK;
        p += 4;
    } else {
        return 0;
    }

    unsigned s;
    if (!read_uint(p, end, TRL_CLUSTER_SLOTS - 1, s) || p == end
        || *p != ' ') {
        return 0;
    }
    p++;

    // host:port, the port after the last colon (an IPv6 host has colons)
    const char *colon = nullptr;
    for (const char *q = p; q < end; q++) {
        if (*q == ':') {
            colon = q;
        } else if (*q == ' ' || *q == '\r' || *q == '\n') {
            return 0;
        }
    }
    if (colon == nullptr || static_cast<size_t>(colon - p)
                                >= TRL_CLUSTER_HOST_MAX) {
        return 0;
    }
    const char *q = colon + 1;
    unsigned pt;
    if (!read_uint(q, end, 65535, pt) || q != end || pt == 0) {
        return 0;
    }

    *slot = s;
    *port = pt;
    size_t hl = static_cast<size_t>(colon - p);
    std::memcpy(host, p, hl);
    host[hl] = '\0';
    return kind;
}

trl_slot_map_t *trl_slot_map_create(void) noexcept {
    trl_slot_map_t *map = new (std::nothrow) trl_slot_map_t;
    if (map != nullptr) {
        std::memset(map->slot, kNone, sizeof(map->slot));
    }
    return map;
}

void trl_slot_map_destroy(trl_slot_map_t *map) noexcept {
    delete map;
}

int trl_slot_map_add(trl_slot_map_t *map, unsigned start, unsigned end,
                     const char *host, size_t host_len,
                     unsigned port) noexcept {
    return trl::guard(-1, [&] {
        if (start > end || end >= TRL_CLUSTER_SLOTS) {
            return -1;
        }
        int n = map->node_of(host, host_len, port);
        if (n < 0) {
            return -1;
        }
        std::memset(map->slot + start, n, end - start + 1);
        return n;
    });
}

int trl_slot_map_move(trl_slot_map_t *map, unsigned slot, const char *host,
                      size_t host_len, unsigned port) noexcept {
    return trl_slot_map_add(map, slot, slot, host, host_len, port);
}

int trl_slot_map_node(const trl_slot_map_t *map, unsigned slot) noexcept {
    if (slot >= TRL_CLUSTER_SLOTS || map->slot[slot] == kNone) {
        return -1;
    }
    return map->slot[slot];
}

unsigned trl_slot_map_nodes(const trl_slot_map_t *map) noexcept {
    return static_cast<unsigned>(map->nodes.size());
}

const char *trl_slot_map_host(const trl_slot_map_t *map, unsigned node,
                              unsigned *port) noexcept {
    if (node >= map->nodes.size()) {
        return nullptr;
    }
    *port = map->nodes[node].port;
    return map->nodes[node].host;
}

unsigned trl_slot_map_unserved(const trl_slot_map_t *map) noexcept {
    unsigned n = 0;
    for (unsigned i = 0; i < TRL_CLUSTER_SLOTS; i++) {
        n += map->slot[i] == kNone;
    }
    return n;
}

}  // extern "C"
