/*
 * fuzz_rate.c - rates, durations and sizes as nginx.conf and policy files
 * write them: never a crash, and a rate that parses prints back to a text
 * that parses to the same rate.
 */

#include <stdlib.h>
#include <string.h>

#include "trl_core.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char         err[256], buf[64];
    size_t       n;
    uint64_t     v;
    trl_rate_t   rate, again;

    if (trl_rate_parse((const char *) data, size, &rate, err, sizeof(err))
        == TRL_OK)
    {
        n = trl_rate_format(&rate, buf, sizeof(buf));
        if (n == 0 || n >= sizeof(buf)
            || trl_rate_parse(buf, n, &again, err, sizeof(err)) != TRL_OK
            || again.limit != rate.limit
            || again.window_ms != rate.window_ms)
        {
            abort();
        }

    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }

    (void) trl_duration_parse((const char *) data, size, &v, err,
                              sizeof(err));
    (void) trl_size_parse((const char *) data, size, &v, err, sizeof(err));

    return 0;
}
