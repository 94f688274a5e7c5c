/* util.c - helpers shared by the unit tests (see unit.h). */

#include "unit.h"

#include <stdio.h>
#include <sys/mman.h>


void *
unit_shm(size_t size)
{
    void  *mem;

    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    ck_assert_msg(mem != MAP_FAILED, "mmap(%zu) failed", size);
    return mem;
}


void
unit_shm_free(void *mem, size_t size)
{
    munmap(mem, size);
}


trl_zone_t *
unit_zone(size_t size)
{
    return unit_zone_flags(size, 0);
}


trl_zone_t *
unit_zone_flags(size_t size, unsigned flags)
{
    char         err[256];
    void        *mem;
    trl_zone_t  *zone;

    mem = unit_shm(size);
    /* create must not rely on the block being zeroed */
    memset(mem, 0xa5, size);

    err[0] = '\0';
    zone = trl_zone_create(mem, size, flags, err, sizeof(err));
    ck_assert_msg(zone != NULL, "trl_zone_create(%zu, %#x): %s", size, flags,
                  err);
    return zone;
}


trl_zone_t *
unit_zone_seeded(size_t size, uint64_t seed)
{
    trl_zone_t   *zone;
    unit_root_t  *root;
    unit_rng_t    rng;
    uint64_t      a, b;

    zone = unit_zone(size);
    root = unit_root(zone);
    rng.s = seed;
    a = unit_rand(&rng);
    b = unit_rand(&rng);
    memcpy(root->seed, &a, 8);
    memcpy(root->seed + 8, &b, 8);
    return zone;
}


unit_root_t *
unit_root(trl_zone_t *zone)
{
    return (unit_root_t *) (void *) zone;
}


size_t
unit_stripe_size(trl_zone_t *zone)
{
    unit_root_t  *r = unit_root(zone);

    /* the chain heads follow the stripes directly */
    return (size_t) (r->heads_off - r->stripes_off) / r->nstripes;
}


unit_stripe_t *
unit_stripe(trl_zone_t *zone, uint32_t i)
{
    unit_root_t  *r = unit_root(zone);

    ck_assert_uint_lt(i, r->nstripes);
    return (unit_stripe_t *) (void *) ((char *) zone + r->stripes_off
                                       + (size_t) i * unit_stripe_size(zone));
}


trl_hash_t
unit_key(const trl_zone_t *zone, const char *key)
{
    trl_hash_t  h;

    trl_zone_hash(zone, key, strlen(key), &h);
    return h;
}


trl_hash_t
unit_key_n(const trl_zone_t *zone, const char *prefix, unsigned long n)
{
    char  buf[128];
    int   len;

    len = snprintf(buf, sizeof(buf), "%s-%lu", prefix, n);
    ck_assert_int_gt(len, 0);
    return unit_key(zone, buf);
}


trl_hash_t
unit_key_in_stripe(trl_zone_t *zone, uint32_t s, uint64_t n)
{
    unit_rng_t   rng;
    trl_hash_t   h;
    uint32_t     nstripes = unit_root(zone)->nstripes;

    /* the stripe is the low bits of lo; hi picks the chain */
    rng.s = n * 0x9e3779b97f4a7c15ULL + s;
    h.lo = (unit_rand(&rng) & ~(uint64_t) (nstripes - 1)) | s;
    h.hi = unit_rand(&rng);
    return h;
}


trl_limit_t
unit_limit(uint32_t n, uint64_t window_ms)
{
    trl_limit_t  l;

    memset(&l, 0, sizeof(l));
    l.rate.limit = n;
    l.rate.window_ms = window_ms;
    l.flags = 0;
    return l;
}


int
unit_acquire(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res)
{
    trl_result_t  r;
    int           rc;

    rc = trl_zone_acquire(zone, key, limit, now_ms, &r);
    unit_check_msg(rc == TRL_OK, "trl_zone_acquire returned %d", rc);
    if (res != NULL) {
        *res = r;
    }
    return !r.rejected;
}


int
unit_peek(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res)
{
    trl_result_t  r;
    int           rc;

    rc = trl_zone_peek(zone, key, limit, now_ms, &r);
    unit_check_msg(rc == TRL_OK || rc == 1, "trl_zone_peek returned %d", rc);
    if (res != NULL) {
        *res = r;
    }
    return rc;
}


uint64_t
unit_time_unit(uint64_t window_ms)
{
    unsigned  shift = 0;

    while ((window_ms >> shift) > 65000) {
        shift++;
    }
    return (uint64_t) 1 << shift;
}


uint64_t
unit_cell(uint64_t window_ms)
{
    return (window_ms + 6) / 7;
}


uint64_t
unit_rand(unit_rng_t *rng)
{
    uint64_t  z;

    z = (rng->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


uint64_t
unit_below(unit_rng_t *rng, uint64_t n)
{
    return unit_rand(rng) % n;
}


TCase *
unit_tcase(Suite *s, const char *name, double timeout)
{
    TCase  *tc;

    tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}
