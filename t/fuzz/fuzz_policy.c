/*
 * fuzz_policy.c - YAML policy files (libyaml under the core's loader):
 * whatever the file holds, loading it either fails with a message or
 * gives policies whose values are within their documented bounds.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trl_core.h"


static const char *
lookup(void *ctx, const char *name, size_t len)
{
    (void) ctx;
    return len == 3 && memcmp(name, "SET", 3) == 0 ? "20r/m" : NULL;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 fd;
    char                path[64], err[512];
    size_t              i;
    trl_policy_t        p;
    trl_policy_set_t   *set;

    fd = memfd_create("policy", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t) size) {
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    err[0] = '\0';
    set = trl_policy_load(path, NULL, lookup, NULL, err, sizeof(err));

    if (set == NULL) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
            abort();                        /* a failure always says why */
        }

    } else {
        for (i = 0; i < trl_policy_count(set); i++) {
            if (trl_policy_get(set, i, &p) != TRL_OK
                || p.rate.limit < 1 || p.rate.limit > TRL_RATE_MAX_LIMIT
                || p.rate.window_ms < 1000
                || p.rate.window_ms > TRL_RATE_MAX_WINDOW_MS)
            {
                abort();
            }
        }
        trl_policy_free(set);
    }

    close(fd);
    return 0;
}
