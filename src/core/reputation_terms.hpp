// reputation_terms.hpp - the grammar of the options that use reputation
// lists, for the C entry points and the policy loader alike.
#ifndef TRL_REPUTATION_TERMS_HPP
#define TRL_REPUTATION_TERMS_HPP

#include <cstddef>
#include <cstdint>
#include <string>

#include "trl_core.h"
#include "trl_reputation.h"

namespace trl {

bool name_check(const char *text, size_t len, std::string &why);
bool scale_parse(const char *text, size_t len, trl_rep_terms_t &out,
                 std::string &why);
bool level_parse(const char *text, size_t len, trl_rep_terms_t &out,
                 std::string &why);
bool score_parse(const char *text, size_t len, uint32_t &score,
                 std::string &why);
uint32_t scale_limit(uint32_t n, uint32_t thousandths);

}  // namespace trl

#endif
