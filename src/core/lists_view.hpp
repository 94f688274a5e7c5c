// lists_view.hpp - a process-local, sorted copy of the runtime lists for the
// request path.
//
// The shared lists are a flat array of slots under one lock; scanning it
// on every request would cost every worker thousands of slot reads and
// serialise them all on that lock as soon as one entry exists.  Each
// process instead keeps a copy of the entries in force, sorted for binary
// search (addresses grouped by family and prefix length, keys by their
// bytes), and rebuilds it only when the lists' change counter moves.  A
// request then costs one atomic load and a few lookups, and takes no lock.
// Expiry is checked at lookup time, so an entry that expires needs no
// rebuild.
#ifndef TRL_LISTS_VIEW_HPP
#define TRL_LISTS_VIEW_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lists.hpp"

namespace trl {

class ListsView {
  public:
    // Brings the copy up to date with l (under its lock when stale).
    // False when it could not (out of memory): the caller scans l instead.
    bool refresh(ListsRoot &l);

    int match_addr(int family, const uint8_t *addr, uint64_t now_ms) const;
    int match_key(const char *zone, size_t zone_len, const void *key,
                  size_t key_len, uint64_t now_ms) const;

  private:
    struct Rule {
        uint8_t action;
        uint64_t expires_ms;
    };
    struct Net {
        std::array<uint8_t, 16> bits;   // the address, masked to the prefix
        Rule rule;
    };
    // the entries of one family and prefix length, sorted by bits
    struct NetGroup {
        int family;
        unsigned prefix;
        std::vector<Net> nets;
    };
    struct Key {
        std::string key;
        std::string zone;               // empty: every zone
        Rule rule;
    };

    void rebuild(ListsRoot &l);

    const ListsRoot *root_ = nullptr;
    uint64_t changes_ = 0;
    std::vector<NetGroup> groups_;
    std::vector<Key> keys_;             // sorted by key
};

// The view of this process (one nginx worker), refreshed against l; null
// when it cannot be had.
const ListsView *lists_view(ListsRoot &l);

}  // namespace trl

#endif
