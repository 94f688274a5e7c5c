/*
 * test_reputation.c - the reputation table: lookups at every boundary,
 * merges, install/replace/extract/reclaim, a full zone, a reload's
 * configure, the readers' bounds, and a randomized comparison with a
 * naive reference.
 */

#include "unit.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define REP_SIZE  (4 << 20)
#define NOW       UINT64_C(1800000000000)


typedef struct {
    uint32_t  s, e;
} r4_t;


static void
put4(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t) (v >> 24);
    b[1] = (uint8_t) (v >> 16);
    b[2] = (uint8_t) (v >> 8);
    b[3] = (uint8_t) v;
}


static trl_rep_build_t *
build4(const r4_t *r, size_t n)
{
    trl_rep_range_t  *rr = calloc(n ? n : 1, sizeof(*rr));
    trl_rep_build_t  *b;
    char              err[256];
    size_t            i;

    for (i = 0; i < n; i++) {
        rr[i].family = 4;
        put4(rr[i].first, r[i].s);
        put4(rr[i].last, r[i].e);
    }
    b = trl_rep_build_ranges(rr, n, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    free(rr);
    return b;
}


static trl_rep_build_t *
text(const char *t)
{
    trl_rep_rules_t   rules = { NULL, 0, 8, 32 };
    trl_rep_build_t  *b;
    char              err[256];

    b = trl_rep_parse(t, strlen(t), "t", &rules, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    return b;
}


static trl_rep_t *
table(void *mem, size_t size)
{
    char        err[256];
    trl_rep_t  *rep = trl_rep_create(mem, size, err, sizeof(err));

    ck_assert_msg(rep != NULL, "%s", err);
    return rep;
}


/* Declares the lists named (comma-separated; "name=score" and "!" for a
 * dry run), slots to slots. */
static void
declare(trl_rep_t *rep, const char *names, int *slots)
{
    trl_rep_decl_t  decl[TRL_REP_MAX_LISTS];
    char            copy[512], *p, *save = NULL, err[256];
    size_t          n = 0;

    snprintf(copy, sizeof(copy), "%s", names);
    for (p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char  *eq = strchr(p, '=');

        memset(&decl[n], 0, sizeof(decl[n]));
        decl[n].score = 50;
        if (*p == '!') {
            decl[n].flags |= TRL_REP_DRY_RUN;
            p++;
        }
        if (eq) {
            *eq = '\0';
            decl[n].score = (uint32_t) atoi(eq + 1);
        }
        snprintf(decl[n].name, sizeof(decl[n].name), "%s", p);
        n++;
    }
    ck_assert_msg(trl_rep_configure(rep, decl, n, slots, NOW, err,
                                    sizeof(err)) == TRL_OK, "%s", err);
}


static void
install(trl_rep_t *rep, int slot, const trl_rep_build_t *b, uint64_t now)
{
    char  err[512];

    ck_assert_msg(trl_rep_install(rep, slot, b, 0, "api", 0, now, err,
                                  sizeof(err)) == TRL_OK, "%s", err);
}


static int
in4(const trl_rep_t *rep, uint32_t a)
{
    uint8_t          b[4];
    trl_rep_match_t  m;

    put4(b, a);
    return trl_rep_lookup(rep, 4, b, &m);
}


static uint64_t
lists4(const trl_rep_t *rep, const char *addr)
{
    uint8_t          b[16];
    trl_rep_match_t  m;
    int              v6 = strchr(addr, ':') != NULL;

    ck_assert_int_eq(inet_pton(v6 ? AF_INET6 : AF_INET, addr, b), 1);
    (void) trl_rep_lookup(rep, v6 ? 6 : 4, b, &m);
    return m.lists | m.dry_run;
}


START_TEST(rep_boundaries)
{
    void             *mem = unit_shm(REP_SIZE);
    trl_rep_t        *rep = table(mem, REP_SIZE);
    int               slot[1];
    trl_rep_build_t  *b;
    size_t            i;
    static const r4_t  r[] = {
        { 0, 0 }, { 0x01020304, 0x0102030a }, { 0x80000000, 0x80000000 },
        { 0xfffffffe, 0xffffffff },
    };

    declare(rep, "t", slot);
    b = build4(r, 4);
    install(rep, slot[0], b, NOW);
    for (i = 0; i < 4; i++) {
        if (r[i].s != 0) {
            ck_assert_msg(!in4(rep, r[i].s - 1), "s-1 of %zu", i);
        }
        ck_assert_msg(in4(rep, r[i].s), "s of %zu", i);
        ck_assert_msg(in4(rep, r[i].e), "e of %zu", i);
        if (r[i].e != 0xffffffff) {
            ck_assert_msg(!in4(rep, r[i].e + 1), "e+1 of %zu", i);
        }
    }
    ck_assert(in4(rep, 0));
    ck_assert(in4(rep, 0xffffffff));
    ck_assert(!in4(rep, 0xfffffffd));
    ck_assert(!in4(rep, 0x7fffffff));
    trl_rep_build_free(b);

    /* IPv6: ::, the last address, a range inside */
    {
        trl_rep_range_t  rr[3];
        char             err[256];

        memset(rr, 0, sizeof(rr));
        rr[0].family = 6;                       /* :: */
        rr[1].family = 6;                       /* 2001:db8::5-2001:db8::9 */
        rr[1].first[0] = 0x20; rr[1].first[1] = 0x01;
        rr[1].first[2] = 0x0d; rr[1].first[3] = 0xb8;
        memcpy(rr[1].last, rr[1].first, 16);
        rr[1].first[15] = 5;
        rr[1].last[15] = 9;
        rr[2].family = 6;                       /* ffff:...:ffff */
        memset(rr[2].first, 0xff, 16);
        memset(rr[2].last, 0xff, 16);
        b = trl_rep_build_ranges(rr, 3, err, sizeof(err));
        ck_assert_ptr_nonnull(b);
        install(rep, slot[0], b, NOW);
        trl_rep_build_free(b);
    }
    ck_assert(lists4(rep, "::"));
    ck_assert(!lists4(rep, "::1"));
    ck_assert(!lists4(rep, "2001:db8::4"));
    ck_assert(lists4(rep, "2001:db8::5"));
    ck_assert(lists4(rep, "2001:db8::9"));
    ck_assert(!lists4(rep, "2001:db8::a"));
    ck_assert(lists4(rep, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    ck_assert(!lists4(rep, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
    ck_assert(!lists4(rep, "1.2.3.4"));     /* the IPv4 part is empty */
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


START_TEST(rep_merges)
{
    static const r4_t  r[] = {
        { 100, 200 }, { 150, 160 }, { 201, 300 }, { 302, 310 },
        { 400, 500 }, { 450, 600 }, { 0xfffffff0, 0xffffffff },
        { 0xffffff00, 0xfffffff5 },
    };
    trl_rep_build_t       *b = build4(r, 8);
    trl_rep_build_info_t   i;
    void                  *mem = unit_shm(REP_SIZE);
    trl_rep_t             *rep = table(mem, REP_SIZE);
    int                    slot[1];

    trl_rep_build_info(b, &i);
    ck_assert_uint_eq(i.ranges4, 4);  /* 100-300, 302-310, 400-600, ff..-f */
    declare(rep, "t", slot);
    install(rep, slot[0], b, NOW);
    ck_assert(in4(rep, 300));
    ck_assert(!in4(rep, 301));
    ck_assert(in4(rep, 302));
    ck_assert(in4(rep, 600));
    ck_assert(!in4(rep, 601));
    ck_assert(in4(rep, 0xffffff00));
    ck_assert(!in4(rep, 0xfffffeff));
    trl_rep_build_free(b);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


START_TEST(rep_install_replace_extract_reclaim)
{
    void                  *mem = unit_shm(REP_SIZE);
    trl_rep_t             *rep = table(mem, REP_SIZE);
    int                    slot[2];
    trl_rep_build_t       *a, *b, *x;
    trl_rep_list_info_t    li;
    trl_rep_zone_info_t    zi;
    trl_rep_build_info_t   ia, ix;
    trl_rep_match_t        m;
    uint8_t                addr[4] = { 40, 0, 0, 1 };
    char                   names[64], err[256];

    declare(rep, "tor=40,bad=90", slot);
    ck_assert_int_eq(slot[0], 0);
    ck_assert_int_eq(slot[1], 1);

    /* no table yet: nothing matches, the info says version 0 */
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 0);
    ck_assert_uint_eq(m.lists, 0);
    ck_assert_ptr_null(trl_rep_extract(rep, slot[0]));
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.version, 0);
    ck_assert_str_eq(li.name, "tor");
    ck_assert_uint_eq(li.score, 40);
    ck_assert_int_eq(trl_rep_info(rep, 5, &li), TRL_ERROR);

    a = text("40.0.0.0/24\n41.0.0.1\n10.0.0.0/8\n2001:db8::/64\n");
    install(rep, slot[0], a, NOW);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 1);
    ck_assert_uint_eq(m.lists, 1);
    ck_assert_uint_eq(m.score, 40);

    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    trl_rep_build_info(a, &ia);
    ck_assert_uint_eq(li.version, 1);
    ck_assert_uint_eq(li.checksum, ia.checksum);
    ck_assert_uint_eq(li.ranges4, 2);
    ck_assert_uint_eq(li.ranges6, 1);
    ck_assert_uint_eq(li.entries, 3);
    ck_assert_uint_eq(li.dropped_trusted, 1);
    ck_assert_str_eq(li.dropped_example,
                     "line 3: 10.0.0.0/8 overlaps the trusted 10.0.0.0/8");
    ck_assert_uint_eq(li.bytes, ia.bytes);
    ck_assert_uint_eq(li.loaded_ms, NOW);
    ck_assert_str_eq(li.origin, "api");

    /* both lists */
    b = text("40.0.0.0/16\n");
    install(rep, slot[1], b, NOW);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 1);
    ck_assert_uint_eq(m.lists, 3);
    ck_assert_uint_eq(m.score, 90);
    ck_assert_uint_eq(trl_rep_names(rep, m.lists, names, sizeof(names)), 7);
    ck_assert_str_eq(names, "tor,bad");

    ck_assert_uint_eq(trl_rep_names(rep, m.lists, names, 5), 5);
    ck_assert(memcmp(names, "tor,b", 5) == 0);
    trl_rep_count(rep, &m);
    trl_rep_count(rep, &m);
    ck_assert_int_eq(trl_rep_info(rep, slot[1], &li), TRL_OK);
    ck_assert_uint_eq(li.matched, 2);

    /* a lookup of some lists: the others are not looked at */
    ck_assert_int_eq(trl_rep_lookup_some(rep, (uint64_t) 1 << slot[0], 4,
                                         addr, &m), 1);
    ck_assert_uint_eq(m.lists, 1);
    ck_assert_uint_eq(m.score, 40);
    ck_assert_int_eq(trl_rep_lookup_some(rep, (uint64_t) 1 << slot[1], 4,
                                         addr, &m), 1);
    ck_assert_uint_eq(m.lists, 2);
    ck_assert_uint_eq(m.score, 90);
    ck_assert_int_eq(trl_rep_lookup_some(rep, 0, 4, addr, &m), 0);
    ck_assert_uint_eq(m.lists, 0);

    /* extract: the same ranges */
    x = trl_rep_extract(rep, slot[0]);
    ck_assert_ptr_nonnull(x);
    trl_rep_build_info(x, &ix);
    ck_assert_uint_eq(ix.checksum, ia.checksum);
    ck_assert_uint_eq(ix.entries, 3);
    trl_rep_build_free(x);

    /* replace tor by b: the old table is retired, freed after 2 s */
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.retired, 0);
    ck_assert_uint_eq(zi.lists, 2);
    install(rep, slot[0], b, NOW + 10);
    ck_assert_uint_eq(lists4(rep, "41.0.0.1"), 0);
    ck_assert_uint_eq(lists4(rep, "40.0.200.1"), 3);
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.retired, ia.bytes);
    trl_rep_build_info(b, &ix);
    ck_assert_uint_eq(zi.used, ia.bytes + 2 * ix.bytes);
    trl_rep_reclaim(rep, NOW + 1999);
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.retired, ia.bytes);
    trl_rep_reclaim(rep, NOW + 2010);
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.retired, 0);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.version, 2);

    /* versions given, unpublished, published, seen, errors, load time */
    ck_assert_int_eq(trl_rep_install(rep, slot[0], a, 1700000000123, "redis",
                                     TRL_REP_UNPUBLISHED, NOW + 3000, err,
                                     sizeof(err)), TRL_OK);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.version, 1700000000123);
    ck_assert_uint_eq(li.unpublished, 1);
    ck_assert_str_eq(li.origin, "redis");
    trl_rep_published(rep, slot[0], 5);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.unpublished, 1);
    trl_rep_published(rep, slot[0], 1700000000123);
    trl_rep_seen(rep, slot[0], 77, 0xabcdef);
    trl_rep_set_error(rep, slot[0], "t:3: not an address: \"x\"", NOW + 5);
    trl_rep_set_load_ms(rep, slot[0], 12);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.unpublished, 0);
    ck_assert_uint_eq(li.redis_version, 77);
    ck_assert_uint_eq(li.redis_checksum, 0xabcdef);
    ck_assert_str_eq(li.error, "t:3: not an address: \"x\"");
    ck_assert_uint_eq(li.error_ms, NOW + 5);
    ck_assert_uint_eq(li.load_ms, 12);
    trl_rep_set_error(rep, slot[0], "", NOW + 6);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_str_eq(li.error, "");

    /* an empty list (DELETE): no table, nothing matches, extract empty */
    x = text("");
    install(rep, slot[0], x, NOW + 4000);
    trl_rep_build_free(x);
    ck_assert_uint_eq(lists4(rep, "41.0.0.1"), 0);
    x = trl_rep_extract(rep, slot[0]);
    ck_assert_ptr_nonnull(x);
    trl_rep_build_info(x, &ix);
    ck_assert_uint_eq(ix.ranges4 + ix.ranges6, 0);
    trl_rep_build_free(x);
    install(rep, slot[1], x = text(""), NOW + 4000);
    trl_rep_build_free(x);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 0);

    trl_rep_build_free(a);
    trl_rep_build_free(b);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


START_TEST(rep_dry_run_and_scores)
{
    void             *mem = unit_shm(REP_SIZE);
    trl_rep_t        *rep = table(mem, REP_SIZE);
    int               slot[3];
    trl_rep_build_t  *b = text("40.0.0.0/24\n");
    trl_rep_match_t   m;
    uint8_t           addr[4] = { 40, 0, 0, 9 };

    declare(rep, "low=10,!watch=100,high=70", slot);
    install(rep, slot[0], b, NOW);
    install(rep, slot[1], b, NOW);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 1);
    ck_assert_uint_eq(m.lists, 1);
    ck_assert_uint_eq(m.dry_run, 2);
    ck_assert_uint_eq(m.score, 10);         /* a dry run's score is not */
    install(rep, slot[2], b, NOW);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 1);
    ck_assert_uint_eq(m.lists, 5);
    ck_assert_uint_eq(m.score, 70);

    /* a dry-run list alone still answers 1 */
    declare(rep, "!watch=100", slot);
    ck_assert_int_eq(trl_rep_lookup(rep, 4, addr, &m), 1);
    ck_assert_uint_eq(m.lists, 0);
    ck_assert_uint_eq(m.dry_run, UINT64_C(1) << slot[0]);
    ck_assert_uint_eq(m.score, 0);

    /* IPv4-mapped IPv6 addresses are looked up as IPv4 */
    ck_assert_uint_eq(lists4(rep, "::ffff:40.0.0.9"), UINT64_C(1) << slot[0]);
    trl_rep_build_free(b);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


START_TEST(rep_full_zone)
{
    size_t                 size = 160 * 1024;
    void                  *mem = unit_shm(size);
    trl_rep_t             *rep = table(mem, size);
    int                    slot[1];
    trl_rep_build_t       *small, *big;
    r4_t                  *r;
    size_t                 i, n = 30000;
    char                   err[512];
    trl_rep_list_info_t    li;
    trl_rep_zone_info_t    zi;

    ck_assert_ptr_null(trl_rep_create(mem, 4096, err, sizeof(err)));
    ck_assert(strstr(err, "too small") != NULL);

    declare(rep, "t", slot);
    small = text("40.0.0.0/24\n");
    install(rep, slot[0], small, NOW);

    r = malloc(n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].s = 0x30000000 + (uint32_t) i * 4;
        r[i].e = r[i].s + 1;
    }
    big = build4(r, n);
    free(r);
    ck_assert_int_eq(trl_rep_install(rep, slot[0], big, 0, "api", 0, NOW + 1,
                                     err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strncmp(err, "the reputation zone is full: the list \"t\" "
                          "needs ", 48) == 0, "%s", err);
    /* the old table is kept */
    ck_assert_uint_eq(lists4(rep, "40.0.0.1"), 1);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(li.version, 1);
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.size, size);
    ck_assert_uint_eq(zi.used, li.bytes);

    /* lists of a third of the heap: one replaces another (two in the
     * heap), a third install is refused while the oldest waits its grace,
     * and taken after */
    trl_rep_build_free(big);
    n = (size_t) (zi.heap * 0.3) / 8;
    r = malloc(n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].s = 0x30000000 + (uint32_t) i * 4;
        r[i].e = r[i].s + 1;
    }
    big = build4(r, n);
    free(r);
    install(rep, slot[0], big, NOW + 2);
    install(rep, slot[0], big, NOW + 2);
    ck_assert_int_eq(trl_rep_install(rep, slot[0], big, 0, "api", 0, NOW + 3,
                                     err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strstr(err, "more once retired tables are freed") != NULL,
                  "%s", err);
    ck_assert(in4(rep, 0x30000000 + 4 * 7 + 1));
    install(rep, slot[0], big, NOW + 2 + 2000);
    ck_assert(in4(rep, 0x30000000 + 4 * 7 + 1));
    ck_assert(!in4(rep, 0x30000000 + 4 * 7 + 2));
    trl_rep_build_free(big);
    trl_rep_build_free(small);
    unit_shm_free(mem, size);
}
END_TEST


START_TEST(rep_configure_reload)
{
    void                 *mem = unit_shm(REP_SIZE);
    trl_rep_t            *rep = table(mem, REP_SIZE), *again;
    int                   slot[3], slot2[3];
    trl_rep_build_t      *a = text("40.0.0.0/24\n"), *b = text("50.0.0.0/24\n");
    trl_rep_list_info_t   li;
    trl_rep_zone_info_t   zi;
    trl_rep_decl_t        decl[2];
    char                  err[256];

    declare(rep, "a,b", slot);
    install(rep, slot[0], a, NOW);
    install(rep, slot[1], b, NOW);

    /* a reload: the same block attached, b kept (its slot and table), a
     * dropped, c new */
    ck_assert_ptr_null(trl_rep_attach(mem, REP_SIZE / 2, err, sizeof(err)));
    again = trl_rep_attach(mem, REP_SIZE, err, sizeof(err));
    ck_assert_msg(again == rep, "%s", err);
    ck_assert_ptr_nonnull(trl_rep_attach(mem, 0, err, sizeof(err)));
    declare(again, "c=20,b=60", slot2);
    ck_assert_int_eq(slot2[1], slot[1]);
    ck_assert_int_ne(slot2[0], slot[1]);
    ck_assert_uint_eq(lists4(again, "50.0.0.1"), UINT64_C(1) << slot[1]);
    ck_assert_uint_eq(lists4(again, "40.0.0.1"), 0);
    ck_assert_int_eq(trl_rep_info(again, slot2[1], &li), TRL_OK);
    ck_assert_uint_eq(li.score, 60);
    ck_assert_uint_eq(li.version, 1);
    ck_assert_int_eq(trl_rep_info(again, slot2[0], &li), TRL_OK);
    ck_assert_str_eq(li.name, "c");
    ck_assert_uint_eq(li.version, 0);
    trl_rep_zone_info(again, &zi);
    ck_assert_uint_eq(zi.lists, 2);
    ck_assert(zi.retired > 0);              /* a's table */

    /* faults: a bad name, a score, twice the same name, too many */
    memset(decl, 0, sizeof(decl));
    strcpy(decl[0].name, "x y");
    ck_assert_int_eq(trl_rep_configure(again, decl, 1, slot2, NOW, err,
                                       sizeof(err)), TRL_ERROR);
    strcpy(decl[0].name, "x");
    decl[0].score = 101;
    ck_assert_int_eq(trl_rep_configure(again, decl, 1, slot2, NOW, err,
                                       sizeof(err)), TRL_ERROR);
    ck_assert_str_eq(err, "the score of \"x\" is 101, at most 100");
    decl[0].score = 1;
    decl[1] = decl[0];
    ck_assert_int_eq(trl_rep_configure(again, decl, 2, slot2, NOW, err,
                                       sizeof(err)), TRL_ERROR);
    ck_assert_str_eq(err, "the reputation list \"x\" is declared twice");
    ck_assert_int_eq(trl_rep_configure(again, decl, 65, slot2, NOW, err,
                                       sizeof(err)), TRL_ERROR);
    /* a failed configure changed nothing */
    ck_assert_uint_eq(lists4(again, "50.0.0.1"), UINT64_C(1) << slot[1]);

    /* another block is not a table */
    {
        void  *other = unit_shm(REP_SIZE);

        ck_assert_ptr_null(trl_rep_attach(other, REP_SIZE, err,
                                          sizeof(err)));
        ck_assert_str_eq(err, "the block holds no reputation table");
        unit_shm_free(other, REP_SIZE);
    }
    trl_rep_build_free(a);
    trl_rep_build_free(b);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


START_TEST(rep_due_and_files)
{
    void               *mem = unit_shm(REP_SIZE);
    trl_rep_t          *rep = table(mem, REP_SIZE);
    int                 slot[2];
    trl_rep_file_id_t   id = { 1, 2, 3, 4 };

    declare(rep, "a,b", slot);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_FILES, 1000, 5000), 1);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_FILES, 1000, 5000), 0);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_FILES, 5999, 5000), 0);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_REDIS, 1000, 1000), 1);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_FILES, 6000, 5000), 1);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_REDIS, 1999, 1000), 0);
    ck_assert_int_eq(trl_rep_due(rep, TRL_REP_DUE_REDIS, 2000, 1000), 1);
    ck_assert_int_eq(trl_rep_due(rep, 2, 99999, 1000), 0);

    ck_assert_int_eq(trl_rep_file_changed(rep, slot[0], &id), 1);
    ck_assert_int_eq(trl_rep_file_changed(rep, slot[0], &id), 0);
    ck_assert_int_eq(trl_rep_file_changed(rep, slot[1], &id), 1);
    id.mtime_ns++;
    ck_assert_int_eq(trl_rep_file_changed(rep, slot[0], &id), 1);
    ck_assert_int_eq(trl_rep_file_changed(rep, slot[0], &id), 0);
    id.ino++;
    ck_assert_int_eq(trl_rep_file_changed(rep, slot[0], &id), 1);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


/* Whatever the heap holds (a reused buffer), a lookup stays inside the
 * block: the page after it is unreadable. */
START_TEST(rep_reader_bounds)
{
    size_t                size = 1 << 20;
    long                  page = sysconf(_SC_PAGESIZE);
    uint8_t              *mem;
    trl_rep_t            *rep;
    int                   slot[2], round;
    trl_rep_build_t      *b;
    trl_rep_zone_info_t   zi;
    r4_t                 *r;
    size_t                i, n = 70000;
    unit_rng_t            rng = { 20240601 };
    uint64_t              heap_off;

    mem = mmap(NULL, size + (size_t) page, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(mem != MAP_FAILED);
    ck_assert_int_eq(mprotect(mem + size, (size_t) page, PROT_NONE), 0);
    rep = table(mem, size);
    declare(rep, "a,b", slot);

    r = malloc(n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].s = (uint32_t) i * 0x10000;        /* k = 16: narrow points */
        r[i].e = r[i].s + 10;
    }
    b = build4(r, n);
    install(rep, slot[0], b, NOW);
    trl_rep_build_free(b);
    b = text("2001:db8::/64\n");
    install(rep, slot[1], b, NOW);
    trl_rep_build_free(b);
    ck_assert(in4(rep, 0x10000 * 5 + 3));
    trl_rep_zone_info(rep, &zi);
    heap_off = zi.size - zi.heap;

    for (round = 0; round < 300; round++) {
        uint8_t  *p;

        /* random bytes, or words of 0xff, or small numbers */
        for (p = mem + heap_off; p + 8 <= mem + size; p += 8) {
            uint64_t  v = unit_rand(&rng);

            switch (round % 3) {
            case 1: v = v & 1 ? UINT64_MAX : v; break;
            case 2: v &= 0xfffff; break;
            }
            memcpy(p, &v, 8);
        }
        for (i = 0; i < 200; i++) {
            uint8_t          a6[16];
            trl_rep_match_t  m;

            (void) in4(rep, (uint32_t) unit_rand(&rng));
            memset(a6, 0, 16);
            memcpy(a6, &round, sizeof(round));
            a6[0] = (uint8_t) unit_rand(&rng);
            (void) trl_rep_lookup(rep, 6, a6, &m);
        }
    }
    free(r);
    munmap(mem, size + (size_t) page);
}
END_TEST


/* Random ranges against a naive reference: a linear scan of the ranges as
 * given (overlapping, adjacent, unsorted). */
static void
random_against_reference(uint64_t seed, size_t nranges, uint32_t span,
    size_t nlookups)
{
    unit_rng_t        rng = { seed };
    r4_t             *r = malloc(nranges * sizeof(*r));
    void             *mem = unit_shm(REP_SIZE * 4);
    trl_rep_t        *rep = table(mem, REP_SIZE * 4);
    trl_rep_build_t  *b, *x;
    int               slot[1];
    size_t            i, j;
    uint32_t          base = (uint32_t) unit_rand(&rng);

    declare(rep, "r", slot);
    for (i = 0; i < nranges; i++) {
        uint32_t  len = (uint32_t) unit_below(&rng, 64);

        r[i].s = base + (uint32_t) unit_below(&rng, span);
        r[i].e = r[i].s + len < r[i].s ? 0xffffffff : r[i].s + len;
        if (unit_below(&rng, 50) == 0) {
            r[i].e = r[i].s;
        }
    }
    b = build4(r, nranges);
    install(rep, slot[0], b, NOW);

    for (j = 0; j < nlookups; j++) {
        uint32_t  a;
        int       want = 0;

        /* near a boundary half the time */
        if (j & 1) {
            r4_t  *k = &r[unit_below(&rng, nranges)];

            a = (j & 2 ? k->s : k->e) + (uint32_t) unit_below(&rng, 3) - 1;
        } else {
            a = base + (uint32_t) unit_below(&rng, span + 64);
        }
        for (i = 0; i < nranges && !want; i++) {
            want = a >= r[i].s && a <= r[i].e;
        }
        unit_check_msg(in4(rep, a) == want,
                       "seed %llu: address %08x: table %d, reference %d",
                       (unsigned long long) seed, a, !want, want);
    }

    /* extract gives the same ranges back */
    x = trl_rep_extract(rep, slot[0]);
    {
        trl_rep_build_info_t  ib, ix;

        trl_rep_build_info(b, &ib);
        trl_rep_build_info(x, &ix);
        ck_assert_uint_eq(ib.checksum, ix.checksum);
    }
    trl_rep_build_free(x);
    trl_rep_build_free(b);
    free(r);
    unit_shm_free(mem, REP_SIZE * 4);
}


START_TEST(rep_random_reference)
{
    uint64_t  seed = 0x5eed2024;

    fprintf(stderr, "rep_random_reference: seed %llu\n",
            (unsigned long long) seed);
    random_against_reference(seed, 3000, 400000, 20000);     /* sparse */
    random_against_reference(seed + 1, 5000, 60000, 20000);  /* overlaps */
    random_against_reference(seed + 2, 40, 5000, 5000);      /* k = 3 */
    random_against_reference(seed + 3, 1, 100, 1000);
}
END_TEST


/* A list big enough for the narrow layout (k = 16), checked at every
 * boundary of a sample, and at bucket edges. */
START_TEST(rep_large_narrow)
{
    size_t                n = 300000, i;
    r4_t                 *r = malloc(n * sizeof(*r));
    void                 *mem = unit_shm(16 << 20);
    trl_rep_t            *rep = table(mem, 16 << 20);
    trl_rep_build_t      *b, *x;
    trl_rep_build_info_t  bi, xi;
    int                   slot[1];
    unit_rng_t            rng = { 77 };

    declare(rep, "big", slot);
    for (i = 0; i < n; i++) {
        r[i].s = (uint32_t) i * 14000 + (uint32_t) unit_below(&rng, 7000);
        r[i].e = r[i].s + (uint32_t) unit_below(&rng, 6000);
    }
    b = build4(r, n);
    trl_rep_build_info(b, &bi);
    ck_assert_uint_eq(bi.ranges4, n);
    /* 4 bytes a range, the 256 KiB index, a header */
    ck_assert_uint_le(bi.bytes, n * 4 + 65537 * 4 + 256);
    install(rep, slot[0], b, NOW);
    for (i = 0; i < n; i++) {
        unit_check(in4(rep, r[i].s));
        unit_check(in4(rep, r[i].e));
        unit_check(!in4(rep, r[i].s - 1));
        unit_check(!in4(rep, r[i].e + 1));
    }
    for (i = 0; i < 65536; i++) {
        uint32_t  a = (uint32_t) i << 16;
        size_t    k = a / 14000;
        int       want = k < n && a >= r[k].s && a <= r[k].e;

        unit_check_msg(in4(rep, a) == want, "bucket edge %08x", a);
    }
    x = trl_rep_extract(rep, slot[0]);
    trl_rep_build_info(x, &xi);
    ck_assert_uint_eq(xi.checksum, bi.checksum);
    trl_rep_build_free(x);
    trl_rep_build_free(b);
    free(r);
    unit_shm_free(mem, 16 << 20);
}
END_TEST


/* Readers never see a list half-written nor empty while a writer in
 * another process replaces it again and again (the old memory reused as
 * soon as the grace allows). */
START_TEST(rep_concurrent_replace)
{
    void             *mem = unit_shm(REP_SIZE);
    trl_rep_t        *rep = table(mem, REP_SIZE);
    int               slot[1], status;
    pid_t             pid;
    uint64_t          misses = 0, i;
    volatile uint32_t  *stop;

    declare(rep, "t", slot);
    stop = unit_shm(4096);
    {
        trl_rep_build_t  *a = text("40.0.0.0/24\n41.0.0.0/24\n");

        install(rep, slot[0], a, NOW);
        trl_rep_build_free(a);
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        trl_rep_build_t  *a = text("40.0.0.0/24\n41.0.0.0/24\n"),
                         *b = text("40.0.0.0/23\n42.0.0.0/24\n"
                                   "43.0.0.0/24\n44.0.0.0/24\n");
        uint64_t          now = NOW;
        char              err[256];

        /* a reclaim every third install, an install every ~20 us: a
         * reader's lookup (tens of ns) often overlaps a free and must
         * look again; three frees within one lookup and its two retries
         * (which give up: no match) do not happen at this pace */
        while (!*stop) {
            usleep(20);
            now += 700;
            if (trl_rep_install(rep, 0, (now / 700) & 1 ? a : b, 0, "api",
                                0, now, err, sizeof(err)) != TRL_OK) {
                _exit(2);
            }
        }
        _exit(0);
    }
    for (i = 0; i < 3000000; i++) {
        if (!in4(rep, 0x28000000 + (uint32_t) (i & 0xff))) {
            misses++;
        }
    }
    *stop = 1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_msg(misses == 0, "%llu lookups missed 40.0.0.x",
                  (unsigned long long) misses);
    unit_shm_free((void *) stop, 4096);
    unit_shm_free(mem, REP_SIZE);
}
END_TEST


/* A writer killed anywhere in an install (under the lock, or writing its
 * table outside it) leaks nothing: once its grace is over, the zone holds
 * the current table alone, and installs go on.  The kill lands at random
 * points (seed printed). */
START_TEST(rep_writer_killed)
{
    size_t                 size = 32 << 20;
    void                  *mem = unit_shm(size);
    trl_rep_t             *rep = table(mem, size);
    int                    slot[1], status, round;
    pid_t                  pid;
    r4_t                  *r;
    size_t                 i, n = 200000;
    unsigned               seed = (unsigned) time(NULL);
    trl_rep_build_t       *big;
    trl_rep_list_info_t    li;
    trl_rep_zone_info_t    zi;
    char                   err[256];

    fprintf(stderr, "rep_writer_killed: seed %u\n", seed);
    srand(seed);

    declare(rep, "t", slot);
    r = malloc(n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].s = 0x30000000 + (uint32_t) i * 4;
        r[i].e = r[i].s + 1;
    }
    big = build4(r, n);
    free(r);

    for (round = 0; round < 6; round++) {
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            uint64_t  now = NOW;

            for ( ;; ) {
                now += 10;
                (void) trl_rep_install(rep, slot[0], big, 0, "api", 0, now,
                                       err, sizeof(err));
            }
        }
        usleep(20000 + (useconds_t) (rand() % 30000));
        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    }

    /* the parent installs (a lock left held is taken over), then reclaims
     * past every grace: only the current table stays */
    install(rep, slot[0], big, NOW + 10000000);
    trl_rep_reclaim(rep, NOW + 20000000);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    trl_rep_zone_info(rep, &zi);
    ck_assert_msg(zi.used == li.bytes,
                  "used %llu, the one table %llu (retired %llu)",
                  (unsigned long long) zi.used,
                  (unsigned long long) li.bytes,
                  (unsigned long long) zi.retired);
    ck_assert_int_eq(in4(rep, 0x30000000), 1);
    ck_assert_int_eq(in4(rep, 0x30000002), 0);

    trl_rep_build_free(big);
    unit_shm_free(mem, size);
}
END_TEST


/* A worker's thread installs while its event loop takes the same lock
 * (trl_rep_due, file checks): the loop waits for the thread, it never
 * takes the lock over as from a dead process of the same pid (which
 * would rebuild the heap under the install's feet). */
typedef struct {
    trl_rep_t        *rep;
    int               slot;
    trl_rep_build_t  *b;
    volatile int      done;
    int               failed;
} installer_t;


static void *
installer(void *arg)
{
    installer_t  *in = arg;
    char          err[256];
    int           k;

    for (k = 0; k < 6; k++) {
        if (trl_rep_install(in->rep, in->slot, in->b, 0, "api", 0,
                            NOW + (uint64_t) k * 3000, err, sizeof(err))
            != TRL_OK)
        {
            in->failed = 1;
        }
    }
    in->done = 1;
    return NULL;
}


START_TEST(rep_threads_share_the_lock)
{
    size_t                size = 16 << 20, i, n = 400000;
    void                 *mem = unit_shm(size);
    trl_rep_t            *rep = table(mem, size);
    int                   slot[1];
    r4_t                 *r = malloc(n * sizeof(*r));
    installer_t           in;
    pthread_t             t;
    trl_rep_zone_info_t   zi;
    trl_rep_list_info_t   li;
    uint64_t              calls = 0;
    trl_rep_file_id_t     id = { 1, 1, 1, 1 };

    declare(rep, "t", slot);
    for (i = 0; i < n; i++) {
        r[i].s = (uint32_t) i * 5000;
        r[i].e = r[i].s + 9;
    }
    memset(&in, 0, sizeof(in));
    in.rep = rep;
    in.slot = slot[0];
    in.b = build4(r, n);
    ck_assert_int_eq(pthread_create(&t, NULL, installer, &in), 0);
    while (!in.done) {
        (void) trl_rep_due(rep, TRL_REP_DUE_FILES, NOW + calls, 1);
        (void) trl_rep_file_changed(rep, slot[0], &id);
        calls++;
    }
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(in.failed, 0);

    /* the heap adds up: the current table and the retired ones */
    trl_rep_zone_info(rep, &zi);
    ck_assert_int_eq(trl_rep_info(rep, slot[0], &li), TRL_OK);
    ck_assert_uint_eq(zi.used, li.bytes + zi.retired);
    trl_rep_reclaim(rep, NOW + 60000);
    trl_rep_zone_info(rep, &zi);
    ck_assert_uint_eq(zi.used, li.bytes);
    for (i = 0; i < n; i += 997) {
        unit_check(in4(rep, r[i].s + 9));
        unit_check(!in4(rep, r[i].s + 10));
    }
    ck_assert_uint_gt(calls, 0);
    trl_rep_build_free(in.b);
    free(r);
    unit_shm_free(mem, size);
}
END_TEST


Suite *
reputation_suite(void)
{
    Suite  *s = suite_create("reputation");
    TCase  *tc = unit_tcase(s, "table", 60);

    tcase_add_test(tc, rep_boundaries);
    tcase_add_test(tc, rep_merges);
    tcase_add_test(tc, rep_install_replace_extract_reclaim);
    tcase_add_test(tc, rep_dry_run_and_scores);
    tcase_add_test(tc, rep_full_zone);
    tcase_add_test(tc, rep_configure_reload);
    tcase_add_test(tc, rep_due_and_files);
    tcase_add_test(tc, rep_reader_bounds);
    tcase_add_test(tc, rep_random_reference);
    tcase_add_test(tc, rep_large_narrow);
    tcase_add_test(tc, rep_concurrent_replace);
    tcase_add_test(tc, rep_threads_share_the_lock);
    tcase_add_test(tc, rep_writer_killed);
    return s;
}
