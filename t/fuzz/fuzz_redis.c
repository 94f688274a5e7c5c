/*
 * fuzz_redis.c - what comes back from Redis and goes to it: redirection
 * replies (MOVED/ASK), key slots, shared list entries (decoded, and an
 * entry that decodes encodes back to a text that decodes alike), and the
 * Redis names of keys (bounded whatever the key).
 */

#include <stdlib.h>
#include <string.h>

#include "trl_cluster.h"
#include "trl_core.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              host[TRL_CLUSTER_HOST_MAX], buf[1024],
                      name[8 + TRL_REDIS_NAME_MAX];
    size_t            n;
    unsigned          slot, port;
    trl_list_entry_t  e, again;

    if (trl_cluster_redirect((const char *) data, size, &slot, host, &port)
        && (slot >= TRL_CLUSTER_SLOTS || port == 0 || port > 65535
            || memchr(host, '\0', sizeof(host)) == NULL))
    {
        abort();
    }

    if (trl_cluster_slot(data, size) >= TRL_CLUSTER_SLOTS) {
        abort();
    }

    if (trl_list_decode(7, (const char *) data, size, &e) == TRL_OK) {
        n = trl_list_encode(&e, buf, sizeof(buf));
        if (n == 0 || trl_list_decode(7, buf, n, &again) != TRL_OK
            || trl_list_encode(&again, buf + 512, 512) != n
            || memcmp(buf, buf + 512, n) != 0)
        {
            abort();
        }
    }

    /* the name is bounded whatever the key (an 8 KB header value too) */
    n = trl_redis_key("trl:", 4, "zone", 4, data, size, name, sizeof(name));
    if (n == 0 || n > sizeof(name)) {
        abort();
    }

    return 0;
}
