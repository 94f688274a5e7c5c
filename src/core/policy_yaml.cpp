// policy_yaml.cpp - reads a policy file into a Document with libyaml's event
// API, keeping the line and column of every node.
//
// Refused here, each with its position: syntax errors (libyaml's problem
// and context), anchors and aliases, explicit tags, a second document, keys
// that are not scalars, duplicate keys, nesting deeper than kMaxDepth.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <yaml.h>

#include "policy.hpp"

namespace trl {
namespace {

constexpr size_t kMaxDepth = 64;

std::string at(const std::string &path, const Mark &m) {
    return path + ":" + std::to_string(m.line) + ":" +
           std::to_string(m.column) + ": ";
}

Mark mark_of(const yaml_mark_t &m) {
    Mark r;
    r.line = static_cast<uint32_t>(m.line + 1);
    r.column = static_cast<uint32_t>(m.column + 1);
    return r;
}

// Line and column (in characters) of a byte offset into the file.
Mark mark_at_offset(const std::string &data, size_t offset) {
    Mark r;
    for (size_t i = 0; i < offset && i < data.size(); i++) {
        unsigned char c = static_cast<unsigned char>(data[i]);
        if (c == '\n') {
            r.line++;
            r.column = 1;
        } else if ((c & 0xc0) != 0x80) {
            r.column++;
        }
    }
    return r;
}

bool read_file(const std::string &path, std::string &data, std::string &why) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        why = path + ": cannot open the policy file: " + std::strerror(errno);
        return false;
    }
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        data.append(buf, n);
    }
    int failed = std::ferror(f);
    int saved = errno;
    std::fclose(f);
    if (failed) {
        why = path + ": cannot read the policy file: " + std::strerror(saved);
        return false;
    }
    return true;
}

struct Parser {
    yaml_parser_t parser;
    yaml_event_t event;
    bool has_event = false;

    Parser() { yaml_parser_initialize(&parser); }
    ~Parser() {
        drop();
        yaml_parser_delete(&parser);
    }
    void drop() {
        if (has_event) {
            yaml_event_delete(&event);
            has_event = false;
        }
    }
    bool next() {
        drop();
        if (!yaml_parser_parse(&parser, &event)) {
            return false;
        }
        has_event = true;
        return true;
    }
    Parser(const Parser &) = delete;
    Parser &operator=(const Parser &) = delete;
};

std::string syntax_error(const std::string &path, const std::string &data,
                         const yaml_parser_t &p) {
    if (p.error == YAML_MEMORY_ERROR) {
        return path + ": out of memory while parsing the policy file";
    }
    std::string problem = p.problem ? p.problem : "syntax error";
    if (p.error == YAML_READER_ERROR) {
        std::string what = problem;
        if (p.problem_value != -1) {
            char hex[16];
            std::snprintf(hex, sizeof(hex), " (#%X)",
                          static_cast<unsigned>(p.problem_value));
            what += hex;
        }
        return at(path, mark_at_offset(data, p.problem_offset)) +
               "bad YAML: " + what + "; expected UTF-8 text";
    }
    std::string msg = at(path, mark_of(p.problem_mark)) + "bad YAML: " +
                      problem;
    if (p.context != nullptr) {
        Mark c = mark_of(p.context_mark);
        msg += " (" + std::string(p.context) + " at line " +
               std::to_string(c.line) + ", column " +
               std::to_string(c.column) + ")";
    }
    return msg;
}

struct Open {
    uint32_t node;
    std::unordered_map<std::string, uint32_t> keys;   // mappings: key -> line
};

}  // namespace

bool YamlNode::is_null() const {
    return kind == kScalar && plain &&
           (text.empty() || text == "~" || text == "null" || text == "Null" ||
            text == "NULL");
}

bool parse_yaml_file(const std::string &path, Document &doc,
                     std::string &why) {
    std::string data;
    if (!read_file(path, data, why)) {
        return false;
    }

    doc = Document();
    doc.path = path;

    Parser p;
    yaml_parser_set_input_string(
        &p.parser, reinterpret_cast<const unsigned char *>(data.data()),
        data.size());

    std::vector<Open> stack;
    bool in_document = false;

    for (;;) {
        if (!p.next()) {
            why = syntax_error(path, data, p.parser);
            return false;
        }
        const yaml_event_t &ev = p.event;
        Mark m = mark_of(ev.start_mark);

        const char *anchor = nullptr;
        const char *tag = nullptr;
        YamlNode node;
        node.mark = m;
        bool opens = false;

        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
            continue;
        case YAML_STREAM_END_EVENT:
            return true;
        case YAML_DOCUMENT_START_EVENT:
            if (!doc.empty) {
                why = at(path, m) + "a second YAML document; expected one "
                      "document per policy file";
                return false;
            }
            in_document = true;
            continue;
        case YAML_DOCUMENT_END_EVENT:
            in_document = false;
            continue;
        case YAML_ALIAS_EVENT:
            why = at(path, m) + "alias *" +
                  reinterpret_cast<const char *>(ev.data.alias.anchor) +
                  " is not supported; expected the value itself (defaults: "
                  "shares settings between policies)";
            return false;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            stack.pop_back();
            continue;
        case YAML_SCALAR_EVENT:
            anchor = reinterpret_cast<const char *>(ev.data.scalar.anchor);
            tag = reinterpret_cast<const char *>(ev.data.scalar.tag);
            node.kind = YamlNode::kScalar;
            node.text.assign(
                reinterpret_cast<const char *>(ev.data.scalar.value),
                ev.data.scalar.length);
            node.plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = reinterpret_cast<const char *>(
                ev.data.mapping_start.anchor);
            tag = reinterpret_cast<const char *>(ev.data.mapping_start.tag);
            node.kind = YamlNode::kMapping;
            opens = true;
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = reinterpret_cast<const char *>(
                ev.data.sequence_start.anchor);
            tag = reinterpret_cast<const char *>(
                ev.data.sequence_start.tag);
            node.kind = YamlNode::kSequence;
            opens = true;
            break;
        default:
            continue;
        }

        if (!in_document) {
            continue;   // cannot happen: libyaml nests nodes in documents
        }
        if (anchor != nullptr) {
            why = at(path, m) + "anchor &" + anchor + " is not supported; "
                  "expected a value without anchors (defaults: shares "
                  "settings between policies)";
            return false;
        }
        if (tag != nullptr) {
            why = at(path, m) + "tag " + tag + " is not supported; expected "
                  "a value without tags";
            return false;
        }

        uint32_t id = static_cast<uint32_t>(doc.nodes.size());

        if (stack.empty()) {
            doc.root = id;
            doc.empty = false;
        } else {
            Open &parent = stack.back();
            YamlNode &pn = doc.nodes[parent.node];
            if (pn.kind == YamlNode::kMapping && pn.kids.size() % 2 == 0) {
                if (node.kind != YamlNode::kScalar) {
                    why = at(path, m) + "a " +
                          (node.kind == YamlNode::kMapping ? "mapping"
                                                           : "sequence") +
                          " as a mapping key; expected a name";
                    return false;
                }
                auto seen = parent.keys.find(node.text);
                if (seen != parent.keys.end()) {
                    why = at(path, m) + "duplicate key \"" + node.text +
                          "\" (first at line " +
                          std::to_string(seen->second) +
                          "); expected each key once per mapping";
                    return false;
                }
                parent.keys.emplace(node.text, m.line);
            }
            pn.kids.push_back(id);
        }

        doc.nodes.push_back(std::move(node));

        if (opens) {
            if (stack.size() >= kMaxDepth) {
                why = at(path, m) + "nesting deeper than " +
                      std::to_string(kMaxDepth) + " levels; expected a "
                      "policy file";
                return false;
            }
            stack.push_back(Open{id, {}});
        }
    }
}

}  // namespace trl
