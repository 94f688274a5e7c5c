// guard.hpp - the one way an extern "C" entry point runs C++: inside
// guard(), which catches every exception and turns it into the entry
// point's error return (and a reason in err, where it has one), so that
// none ever reaches the C caller.  The entry points are declared
// TRL_NOEXCEPT (trl_base.h); guard() is what lets them keep that promise.
#ifndef TRL_GUARD_HPP
#define TRL_GUARD_HPP

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

namespace trl {

// Copies why into err, NUL-terminated, cut to errlen (nothing when err is
// null or errlen 0).
inline void put_error(char *err, size_t errlen, const char *why,
                      size_t len) noexcept {
    if (err == nullptr || errlen == 0) {
        return;
    }
    size_t n = len < errlen - 1 ? len : errlen - 1;
    std::memcpy(err, why, n);
    err[n] = '\0';
}

inline void put_error(char *err, size_t errlen,
                      const std::string &why) noexcept {
    put_error(err, errlen, why.data(), why.size());
}

inline void put_error(char *err, size_t errlen, const char *why) noexcept {
    put_error(err, errlen, why, std::strlen(why));
}

// Where a failing entry point says why: err and errlen as the caller gave
// them, and what it was doing, for the reason of an exception ("out of
// memory loading the policy file").
struct ErrorOut {
    char *err = nullptr;
    size_t errlen = 0;
    const char *doing = nullptr;
};

// Runs body() and returns what it returns; an exception returns fail.
template <typename R, typename F>
R guard(R fail, F &&body) noexcept {
    try {
        return body();
    } catch (...) {
        return fail;
    }
}

// "<what> <doing>" to out.err, without allocating (what may be the want
// of memory).
inline void put_reason(const ErrorOut &out, const char *what) noexcept {
    if (out.err != nullptr && out.errlen != 0) {
        std::snprintf(out.err, out.errlen, "%s%s%s", what,
                      out.doing ? " " : "", out.doing ? out.doing : "");
    }
}

// The same, with the exception's reason written to out.err.
template <typename R, typename F>
R guard(R fail, const ErrorOut &out, F &&body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        put_reason(out, "out of memory");
    } catch (...) {
        put_reason(out, "internal error");
    }
    return fail;
}

// For the few entry points that return nothing.
template <typename F>
void guard_void(F &&body) noexcept {
    try {
        body();
    } catch (...) {
    }
}

}  // namespace trl

#endif
