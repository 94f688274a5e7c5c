// policy.hpp - YAML policy files: the model, the YAML document it is read
// from, and the parsers of the value types (durations, sizes).
//
// A policy file is read in two steps: policy_yaml.cpp turns the file into a
// Document (a tree of scalars, mappings and sequences, each with the line
// and column where it starts), refusing what the format has no use for;
// policy.cpp walks the Document, substitutes ${VAR} references, interprets
// and validates every value and builds a PolicySet.  Every error names the
// file, line and column of the offending node.
//
// See the "Policy files" section of trl_core.h for the format.
#ifndef TRL_POLICY_HPP
#define TRL_POLICY_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "trl_core.h"

namespace trl {

// ---- the YAML document --------------------------------------------------

struct Mark {
    uint32_t line = 1;      // 1-based
    uint32_t column = 1;    // 1-based
};

struct YamlNode {
    enum Kind { kScalar, kMapping, kSequence };

    Kind kind = kScalar;
    Mark mark;               // where the node starts
    std::string text;        // scalars: the value, escapes resolved
    bool plain = false;      // scalars: plain style (not quoted, no block)
    // mappings: key, value, key, value, ... (indices into Document::nodes);
    // sequences: the items
    std::vector<uint32_t> kids;

    // A plain empty, "~" or "null" scalar: "nothing here".
    bool is_null() const;
};

struct Document {
    std::string path;            // for messages
    std::vector<YamlNode> nodes; // nodes[root] is the document's root
    uint32_t root = 0;
    bool empty = true;           // the stream holds no document
};

// Reads and parses path; on failure sets why to "PATH:LINE:COLUMN: ...".
// Anchors, aliases, tags and more than one document are refused; keys must
// be scalars and unique within their mapping.
bool parse_yaml_file(const std::string &path, Document &doc,
                     std::string &why);

// ---- the model ----------------------------------------------------------

struct Policy {
    std::string name;
    std::string key;
    std::string distinct;              // "": the policy counts requests
    bool active = false;               // active: (issue 15)
    uint64_t active_max_ms = 0;        // 0: the rate's window
    std::string lifetime;              // "": none
    std::string token;                 // "": none
    trl_rate_t rate{};
    uint64_t zone_size = 0;
    uint32_t count = TRL_COUNT_ALL;
    uint32_t warn = 0;                 // absolute count, 0: none
    uint32_t sync = TRL_SYNC_MODE_OFF;
    bool dry_run = false;
    uint32_t log_rate = 0;             // 0: the zone's default
    uint32_t log_key = TRL_LOG_KEY_ON;
    trl_penalty_t penalty{};           // base_ms 0: none
    trl_rep_terms_t scale{};           // n 0: none
    trl_rep_terms_t penalty_level{};   // n 0: none
    uint32_t deny_score = 0;           // 0: none
    trl_ban_t ban{};                   // count 0: none
    uint32_t line = 0;
};

struct PolicySet {
    bool enabled = true;
    std::string environment;
    std::vector<Policy> policies;                  // file order
    std::unordered_map<std::string, size_t> index; // name -> policies[i]

    const Policy *find(const std::string &name) const;
};

// Looks a variable up: true and value set when it is set.
struct EnvLookup {
    trl_env_lookup_pt fn = nullptr;   // nullptr: the process environment
    void *ctx = nullptr;

    bool get(const std::string &name, std::string &value) const;
};

// Loads path for environment (nullptr or "": the file's choice).
bool load_policies(const std::string &path, const char *environment,
                   const EnvLookup &lookup, PolicySet &set, std::string &why);

// ---- value parsers (also behind trl_duration_parse, trl_size_parse) -----

// Default zone size of a policy that names none (10m).
constexpr uint64_t kPolicyZoneSize = 10 * 1024 * 1024;
constexpr uint64_t kPolicyMinZoneSize = 32 * 1024;
constexpr uint64_t kDurationMaxMs = TRL_RATE_MAX_WINDOW_MS;   // 365d

// "<N><unit>" terms, unit ms, s, m, h or d, summed ("1h30m"); at most 365d.
bool parse_duration(const char *text, std::size_t len, uint64_t &ms,
                    std::string &why);

// active_grammar.cpp: token_ratelimit_zone's active[=MAX] and a policy's
// active: ("on": max_ms 0, the rate's window), and an upstream's lifetime
// (digits: seconds; else a duration).
bool parse_active(const char *text, std::size_t len, uint64_t &max_ms,
                  std::string &why);
bool parse_lifetime(const char *text, std::size_t len, uint64_t &ms);

// "<N>" bytes or "<N>k", "<N>m", "<N>g" (case-insensitive).
bool parse_size(const char *text, std::size_t len, uint64_t &bytes,
                std::string &why);

// Replaces ${NAME} and ${NAME:-default} in text; why names the problem.
bool substitute(const std::string &text, const EnvLookup &lookup,
                std::string &out, std::string &why);

}  // namespace trl

#endif
