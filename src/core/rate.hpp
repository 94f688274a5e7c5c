// rate.hpp - parsing and printing "N requests per window" rates.
#ifndef TRL_RATE_HPP
#define TRL_RATE_HPP

#include <cstddef>
#include <cstdint>
#include <string>

#include "trl_core.h"

namespace trl {

// Parses "Nr/s" ... "Nr/<count><unit>"; on failure returns false and sets
// why to a sentence naming what is wrong and what is accepted.
bool parse_rate(const char *text, std::size_t len, trl_rate_t &rate,
                std::string &why);

std::string format_rate(const trl_rate_t &rate);

}  // namespace trl

#endif
