/* test_lists.c - runtime allow/deny lists and their Redis reconcile. */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define LISTS_SIZE  (64 * 1024)
#define NOW         UINT64_C(1800000000000)     /* Unix ms */
#define JS_SAFE     (UINT64_C(1) << 53)


static void *
lists_mem(void)
{
    void  *mem = aligned_alloc(64, LISTS_SIZE);

    ck_assert_ptr_nonnull(mem);
    return mem;
}


/* nbytes of the address given, the rest zero */
static trl_list_entry_t
addr_entry(int action, int family, const void *bytes, size_t nbytes,
    int prefix)
{
    trl_list_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.action = (uint8_t) action;
    e.family = (uint8_t) family;
    e.prefix = (uint8_t) prefix;
    memcpy(e.addr, bytes, nbytes);
    return e;
}


static trl_list_entry_t
key_entry(int action, const char *key, const char *zone)
{
    trl_list_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.action = (uint8_t) action;
    e.key_len = (uint8_t) strlen(key);
    memcpy(e.key, key, e.key_len);
    strcpy(e.zone, zone);
    return e;
}


START_TEST(lists_create_attach)
{
    void         *mem = lists_mem();
    char          err[128];
    trl_lists_t  *l;

    /* not made: a failing attach says why */
    ck_assert_ptr_null(trl_lists_attach(mem, LISTS_SIZE, err, sizeof(err)));
    ck_assert_str_eq(err, "the block holds no lists");
    memset(mem, 0, LISTS_SIZE);
    ck_assert_ptr_null(trl_lists_attach(mem, 0, NULL, 0));
    ck_assert_ptr_null(trl_lists_attach(NULL, 0, err, sizeof(err)));
    ck_assert_str_eq(err, "the block of the lists is missing or too small");

    l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_gt(trl_lists_capacity(l), 200);
    ck_assert_uint_lt(trl_lists_capacity(l) * sizeof(trl_list_entry_t),
                      LISTS_SIZE);

    /* a reload adopts the block, with or without its size */
    ck_assert_ptr_eq(trl_lists_attach(mem, LISTS_SIZE, NULL, 0), l);
    ck_assert_ptr_eq(trl_lists_attach(mem, 0, NULL, 0), l);
    ck_assert_ptr_null(trl_lists_create(mem, 16, err, sizeof(err)));
    ck_assert_msg(strstr(err, "too small: 16 bytes") != NULL, "%s", err);
    free(mem);
}
END_TEST


/* a block laid out by a module whose entries had no origin (layout 1),
 * kept by a reload, is refused rather than misread */
START_TEST(lists_old_layout_refused)
{
    void         *mem = lists_mem();
    char          err[128];
    uint32_t      old = 1;
    trl_lists_t  *l;

    l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    ck_assert_ptr_nonnull(l);
    memcpy((char *) mem + 8, &old, sizeof(old));    /* ListsRoot.version */
    ck_assert_ptr_null(trl_lists_attach(mem, 0, err, sizeof(err)));
    ck_assert_msg(strstr(err, "another version of the module (layout 1, "
                              "this one reads 2)") != NULL, "%s", err);
    free(mem);
}
END_TEST


START_TEST(lists_origin)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e, d, got[4];
    char               buf[512];
    size_t             n;

    /* kept by the lists as given */
    e = addr_entry(TRL_LIST_DENY, 4, "\xc0\x00\x02\x07", 4, 32);
    strcpy(e.origin, "auto_ban:login");
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    ck_assert_uint_eq(trl_lists_get(l, got, 4, NOW), 1);
    ck_assert_str_eq(got[0].origin, "auto_ban:login");

    /* through Redis: after the zone and a space, both kinds of entry */
    e.created_ms = NOW;
    n = trl_list_encode(&e, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2:4:32:1800000000000:0:c0000207: auto_ban:login");
    ck_assert_int_eq(trl_list_decode(e.id, buf, n, &d), TRL_OK);
    ck_assert_int_eq(memcmp(&d, &e, sizeof(e)), 0);

    e = key_entry(TRL_LIST_DENY, "bob", "login");
    strcpy(e.origin, "crowdsec:crowdsecurity/ssh-bf");
    e.id = 5;
    n = trl_list_encode(&e, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2:0:0:0:0:626f62:login "
                          "crowdsec:crowdsecurity/ssh-bf");
    ck_assert_int_eq(trl_list_decode(5, buf, n, &d), TRL_OK);
    ck_assert_int_eq(memcmp(&d, &e, sizeof(e)), 0);

    /* as older nodes wrote them: no origin */
    ck_assert_int_eq(trl_list_decode(7, "2:4:32:1:0:c0000207:", 20, &d),
                     TRL_OK);
    ck_assert_str_eq(d.origin, "");
    ck_assert_int_eq(trl_list_decode(7, "2:0:0:1:0:626f62:login", 22, &d),
                     TRL_OK);
    ck_assert_str_eq(d.zone, "login");
    ck_assert_str_eq(d.origin, "");

    /* a bad origin: the whole entry is refused */
    ck_assert_int_eq(trl_list_decode(7, "2:4:32:1:0:c0000207: ", 21, &d),
                     TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(7, "2:4:32:1:0:c0000207: a b", 24, &d),
                     TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(7, "2:4:32:1:0:c0000207:z a", 23, &d),
                     TRL_ERROR);                  /* zone on an address */

    ck_assert_int_eq(trl_list_origin_valid("api", 3), 1);
    ck_assert_int_eq(trl_list_origin_valid("a\"\\b", 4), 1);
    ck_assert_int_eq(trl_list_origin_valid("", 0), 0);
    ck_assert_int_eq(trl_list_origin_valid("a b", 3), 0);
    ck_assert_int_eq(trl_list_origin_valid("a\x7f", 2), 0);
    ck_assert_int_eq(trl_list_origin_valid("\xc3\xa9", 2), 0);
    memset(buf, 'o', 64);
    ck_assert_int_eq(trl_list_origin_valid(buf, 63), 1);
    ck_assert_int_eq(trl_list_origin_valid(buf, 64), 0);
    ck_assert_int_eq(trl_list_origin_valid(NULL, 0), 0);
    free(mem);
}
END_TEST


START_TEST(lists_ids_unique_and_js_safe)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e;
    uint64_t           ids[200];
    int                i, j;

    for (i = 0; i < 200; i++) {
        e = key_entry(TRL_LIST_DENY, "k", "");
        ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
        ck_assert_uint_ne(e.id, 0);
        ck_assert_uint_lt(e.id, JS_SAFE);
        ids[i] = e.id;
        for (j = 0; j < i; j++) {
            ck_assert_uint_ne(ids[j], e.id);
        }
    }
    free(mem);
}
END_TEST


START_TEST(lists_match_addresses)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e;
    uint8_t            a4[4] = { 203, 0, 113, 77 }, b4[4] = { 203, 0, 114, 1 };
    uint8_t            a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1 };
    uint8_t            b6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 2 };

    ck_assert_int_eq(trl_lists_match_addr(l, 4, a4, NOW), 0);

    e = addr_entry(TRL_LIST_DENY, 4, "\xcb\x00\x71\x00", 4, 24);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_match_addr(l, 4, a4, NOW), TRL_LIST_DENY);
    ck_assert_int_eq(trl_lists_match_addr(l, 4, b4, NOW), 0);
    ck_assert_int_eq(trl_lists_match_addr(l, 6, a6, NOW), 0);   /* family */

    /* a /48 allow, and one address of it denied: deny wins */
    e = addr_entry(TRL_LIST_ALLOW, 6, "\x20\x01\x0d\xb8\x00\x01", 6, 48);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_match_addr(l, 6, a6, NOW), TRL_LIST_ALLOW);
    ck_assert_int_eq(trl_lists_match_addr(l, 6, b6, NOW), 0);

    e = addr_entry(TRL_LIST_DENY, 6, a6, 16, 128);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_match_addr(l, 6, a6, NOW), TRL_LIST_DENY);

    /* odd prefix lengths */
    e = addr_entry(TRL_LIST_ALLOW, 4, "\x0a\x80\x00\x00", 4, 9);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_match_addr(l, 4, (uint8_t *) "\x0a\xff\x01\x01",
                                          NOW), TRL_LIST_ALLOW);
    ck_assert_int_eq(trl_lists_match_addr(l, 4, (uint8_t *) "\x0a\x7f\x01\x01",
                                          NOW), 0);
    free(mem);
}
END_TEST


START_TEST(lists_match_keys_expire_remove)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e, got[8];
    uint64_t           id, allow, deny;

    e = key_entry(TRL_LIST_ALLOW, "alice", "login");
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    e = key_entry(TRL_LIST_DENY, "mallory", "");
    e.expires_ms = NOW + 1000;
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    id = e.id;

    ck_assert_int_eq(trl_lists_match_key(l, "login", 5, "alice", 5, NOW),
                     TRL_LIST_ALLOW);
    ck_assert_int_eq(trl_lists_match_key(l, "mfa", 3, "alice", 5, NOW), 0);
    ck_assert_int_eq(trl_lists_match_key(l, "login", 5, "alic", 4, NOW), 0);
    ck_assert_int_eq(trl_lists_match_key(l, "mfa", 3, "mallory", 7, NOW),
                     TRL_LIST_DENY);
    ck_assert_int_eq(trl_lists_match_key(l, "mfa", 3, "mallory", 7,
                                         NOW + 1000), 0);     /* expired */
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 2);
    trl_lists_count(l, NOW, &allow, &deny);
    ck_assert_uint_eq(allow, 1);
    ck_assert_uint_eq(deny, 1);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW + 1000), 1);
    trl_lists_count(l, NOW + 1000, &allow, &deny);
    ck_assert_uint_eq(allow, 1);
    ck_assert_uint_eq(deny, 0);

    ck_assert_int_eq(trl_lists_remove(l, id, 0), 0);        /* gone already */
    ck_assert_int_eq(trl_lists_remove(l, got[0].id, 0), 1);
    ck_assert_int_eq(trl_lists_remove(l, got[0].id, 0), 0);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 0);
    ck_assert_int_eq(trl_lists_match_key(l, "login", 5, "alice", 5, NOW), 0);
    free(mem);
}
END_TEST


/* what the lists say for an address, by scanning the entries given */
static int
ref_match_addr(const trl_list_entry_t *e, size_t n, int family,
    const uint8_t *addr, uint64_t now)
{
    int       seen = 0;
    size_t    i;
    unsigned  b;

    for (i = 0; i < n; i++) {
        if (e[i].family != family
            || (e[i].expires_ms != 0 && e[i].expires_ms <= now))
        {
            continue;
        }
        for (b = 0; b < e[i].prefix; b++) {
            if (((e[i].addr[b / 8] ^ addr[b / 8]) >> (7 - b % 8)) & 1) {
                break;
            }
        }
        if (b == e[i].prefix && seen != TRL_LIST_DENY) {
            seen = e[i].action;
        }
    }
    return seen;
}


static int
ref_match_key(const trl_list_entry_t *e, size_t n, const char *zone,
    const char *key, uint64_t now)
{
    int     seen = 0;
    size_t  i;

    for (i = 0; i < n; i++) {
        if (e[i].family == 0
            && (e[i].expires_ms == 0 || e[i].expires_ms > now)
            && e[i].key_len == strlen(key)
            && memcmp(e[i].key, key, e[i].key_len) == 0
            && (e[i].zone[0] == '\0' || strcmp(e[i].zone, zone) == 0)
            && seen != TRL_LIST_DENY)
        {
            seen = e[i].action;
        }
    }
    return seen;
}


/* few distinct bytes (every bit of a byte varies): ranges overlap */
static void
random_addr(uint8_t *a, int len)
{
    static const uint8_t  bytes[] = { 0x00, 0xff, 0x0f, 0xf0 };
    int                   i;

    for (i = 0; i < len; i++) {
        a[i] = (uint8_t) (i < 2 ? 10 : bytes[random() % 4]);
    }
}


/*
 * The request path answers from a sorted copy of the lists kept by each
 * process: random addresses, ranges and keys, added and removed, against
 * a scan of the same entries, at times around their expiries.
 */
START_TEST(lists_match_random_against_scan)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e, ent[160];
    size_t             n = 0, i;
    uint8_t            a[16];
    uint64_t           now;
    char               key[8], zone[8];
    int                step, q, family, len;
    static const char *zones[] = { "", "login", "mfa" };

    srandom(42);

    for (step = 0; step < 400; step++) {
        if (n > 0 && random() % 4 == 0) {         /* remove one */
            i = (size_t) random() % n;
            ck_assert_int_eq(trl_lists_remove(l, ent[i].id, 0), 1);
            ent[i] = ent[--n];

        } else if (n < 160) {                     /* add one */
            if (random() % 3 == 0) {
                snprintf(key, sizeof(key), "k%ld", random() % 20);
                e = key_entry(random() % 2 ? TRL_LIST_ALLOW : TRL_LIST_DENY,
                              key, zones[random() % 3]);
            } else {
                family = random() % 2 ? 4 : 6;
                len = family == 4 ? 4 : 16;
                random_addr(a, len);
                e = addr_entry(random() % 2 ? TRL_LIST_ALLOW : TRL_LIST_DENY,
                               family, a, (size_t) len,
                               (int) (random() % (len * 8 + 1)));
            }
            /* never expired at NOW, when adds may reuse expired slots */
            e.expires_ms = random() % 3 ? 0
                           : NOW + 1 + (uint64_t) (random() % 100);
            ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
            ent[n++] = e;
        }

        for (q = 0; q < 20; q++) {
            now = NOW + (uint64_t) (random() % 120);
            family = random() % 2 ? 4 : 6;
            len = family == 4 ? 4 : 16;
            random_addr(a, len);
            unit_check_msg(trl_lists_match_addr(l, family, a, now)
                           == ref_match_addr(ent, n, family, a, now),
                           "address query %d of step %d", q, step);

            snprintf(key, sizeof(key), "k%ld", random() % 22);
            snprintf(zone, sizeof(zone), "%s", zones[random() % 3]);
            unit_check_msg(trl_lists_match_key(l, zone, strlen(zone), key,
                                               strlen(key), now)
                           == ref_match_key(ent, n, zone, key, now),
                           "key query %d of step %d", q, step);
        }
    }
    free(mem);
}
END_TEST


/* The process's copy follows whichever lists it is asked about, and lists
 * made anew at the same address are never answered from the old copy. */
START_TEST(lists_view_follows_the_lists_asked)
{
    void              *ma = lists_mem(), *mb = lists_mem();
    trl_lists_t       *la = trl_lists_create(ma, LISTS_SIZE, NULL, 0);
    trl_lists_t       *lb = trl_lists_create(mb, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e;
    int                i;

    e = key_entry(TRL_LIST_DENY, "x", "");
    ck_assert_int_eq(trl_lists_add(la, &e, NOW), TRL_OK);
    e = key_entry(TRL_LIST_ALLOW, "x", "");
    ck_assert_int_eq(trl_lists_add(lb, &e, NOW), TRL_OK);

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(trl_lists_match_key(la, "z", 1, "x", 1, NOW),
                         TRL_LIST_DENY);
        ck_assert_int_eq(trl_lists_match_key(lb, "z", 1, "x", 1, NOW),
                         TRL_LIST_ALLOW);
    }

    /* new lists in a's memory, with one entry too (same count) */
    la = trl_lists_create(ma, LISTS_SIZE, NULL, 0);
    ck_assert_ptr_nonnull(la);
    e = key_entry(TRL_LIST_DENY, "y", "");
    ck_assert_int_eq(trl_lists_add(la, &e, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_match_key(la, "z", 1, "x", 1, NOW), 0);
    ck_assert_int_eq(trl_lists_match_key(la, "z", 1, "y", 1, NOW),
                     TRL_LIST_DENY);
    free(ma);
    free(mb);
}
END_TEST


START_TEST(lists_full_then_expired_slots_reused)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e;
    uint32_t           i, cap = trl_lists_capacity(l);

    for (i = 0; i < cap; i++) {
        e = key_entry(TRL_LIST_DENY, "k", "");
        e.expires_ms = i == 7 ? NOW + 10 : 0;
        ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    }
    e = key_entry(TRL_LIST_DENY, "k", "");
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_ERROR);
    e.id = 0;
    ck_assert_int_eq(trl_lists_add(l, &e, NOW + 10), TRL_OK);
    free(mem);
}
END_TEST


/* The request path's copy (made outside the lists' lock, in room reserved
 * before it) holds every entry of lists full to the last slot, and skips
 * removals Redis is still to be told of. */
START_TEST(lists_view_of_full_lists)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e;
    uint8_t            a[4];
    uint32_t           i, cap = trl_lists_capacity(l);
    uint64_t           gone = 0;

    for (i = 0; i < cap; i++) {
        a[0] = 10; a[1] = (uint8_t) (i >> 16); a[2] = (uint8_t) (i >> 8);
        a[3] = (uint8_t) i;
        e = addr_entry(i == cap - 1 ? TRL_LIST_ALLOW : TRL_LIST_DENY, 4, a,
                       4, 32);
        ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
        if (i == 5) {
            gone = e.id;
        }
    }
    ck_assert_int_eq(trl_lists_remove(l, gone, 1), 1);     /* a tombstone */

    for (i = 0; i < cap; i++) {
        a[0] = 10; a[1] = (uint8_t) (i >> 16); a[2] = (uint8_t) (i >> 8);
        a[3] = (uint8_t) i;
        ck_assert_int_eq(trl_lists_match_addr(l, 4, a, NOW),
                         i == 5 ? 0
                         : i == cap - 1 ? TRL_LIST_ALLOW : TRL_LIST_DENY);
    }
    a[0] = 11;
    ck_assert_int_eq(trl_lists_match_addr(l, 4, a, NOW), 0);
    free(mem);
}
END_TEST


START_TEST(lists_encode_decode)
{
    trl_list_entry_t  e, d;
    char              buf[512];
    size_t            n;

    e = addr_entry(TRL_LIST_DENY, 6, "\x20\x01\x0d\xb8\xff\x00", 6, 40);
    e.id = 123456789;
    e.created_ms = NOW;
    e.expires_ms = NOW + 60000;
    n = trl_list_encode(&e, buf, sizeof(buf));
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(buf, "2:6:40:1800000000000:1800000060000:"
                          "20010db8ff0000000000000000000000:");
    ck_assert_int_eq(trl_list_decode(e.id, buf, n, &d), TRL_OK);
    ck_assert_int_eq(memcmp(&d, &e, sizeof(e)), 0);

    e = key_entry(TRL_LIST_ALLOW, "a:b\x01{}", "login:x");
    e.id = 9;
    n = trl_list_encode(&e, buf, sizeof(buf));
    ck_assert_int_eq(trl_list_decode(9, buf, n, &d), TRL_OK);
    ck_assert_int_eq(memcmp(&d, &e, sizeof(e)), 0);

    ck_assert_uint_eq(trl_list_encode(&e, buf, 10), 0);      /* short */

    /* anything malformed is refused */
    ck_assert_int_eq(trl_list_decode(0, buf, n, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(JS_SAFE, buf, n, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "4:0:0:1:0:61:", 13, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:5:0:1:0:61:", 13, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:4:33:1:0:01020304:", 20, &d),
                     TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:4:8:1:0:010203:", 17, &d),
                     TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:4:8:1:0:01020304:z", 20, &d),
                     TRL_ERROR);                  /* zone on an address */
    ck_assert_int_eq(trl_list_decode(1, "1:0:0:1:0:6g:", 13, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:0:0:1:0:616", 13, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:0:0:1:x:61:", 13, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "", 0, &d), TRL_ERROR);
    ck_assert_int_eq(trl_list_decode(1, "1:4:8:1:0:01020304:", 19, &d),
                     TRL_OK);
}
END_TEST


START_TEST(lists_sync_due_one_at_a_time)
{
    void         *mem = lists_mem();
    trl_lists_t  *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);

    ck_assert_int_eq(trl_lists_sync_due(l, NOW, 1000, 1500, 0), 1);
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 1, 1000, 1500, 0), 0);
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 1, 1000, 1500, 1), 0);
    ck_assert_int_eq(trl_lists_sync_done(l), 1);     /* forced meanwhile */
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 2, 1000, 1500, 1), 1);
    ck_assert_int_eq(trl_lists_sync_done(l), 0);
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 500, 1000, 1500, 0), 0);
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 1002, 1000, 1500, 0), 1);
    /* a reconcile that never said it was done is given up */
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 2003, 1000, 1500, 0), 0);
    ck_assert_int_eq(trl_lists_sync_due(l, NOW + 2502, 1000, 1500, 0), 1);
    free(mem);
}
END_TEST


/* What a node sends, and takes in from the hash. */
START_TEST(lists_reconcile)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   a, b, remote[4], puts[8], got[8], resets[4];
    uint64_t           dels[8];
    size_t             n, ndels, nres;

    a = key_entry(TRL_LIST_DENY, "a", "");
    b = key_entry(TRL_LIST_ALLOW, "b", "z");
    ck_assert_int_eq(trl_lists_add(l, &a, NOW), TRL_OK);
    ck_assert_int_eq(trl_lists_add(l, &b, NOW), TRL_OK);
    ck_assert_uint_eq(trl_lists_epoch(l), 0);

    /* both new: both sent */
    n = trl_lists_outgoing(l, puts, 8, dels, 8, &ndels, NOW);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ndels, 0);

    /* the hash answers with them and one of another node */
    remote[0] = a;
    remote[1] = b;
    remote[2] = key_entry(TRL_LIST_DENY, "c", "");
    remote[2].id = 77;
    trl_lists_incoming(l, 5, remote, 3, (uint64_t[]) { a.id, b.id }, 2,
                       NULL, 0, resets, 4, &nres, NOW);
    ck_assert_uint_eq(trl_lists_epoch(l), 5);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 3);
    ck_assert_int_eq(trl_lists_match_key(l, "q", 1, "c", 1, NOW),
                     TRL_LIST_DENY);
    n = trl_lists_outgoing(l, puts, 8, dels, 8, &ndels, NOW);
    ck_assert_uint_eq(n, 0);                        /* all synced */

    /* a removed here: a tombstone, invisible, sent as a deletion */
    ck_assert_int_eq(trl_lists_remove(l, a.id, 1), 1);
    ck_assert_int_eq(trl_lists_match_key(l, "q", 1, "a", 1, NOW), 0);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 2);
    n = trl_lists_outgoing(l, puts, 8, dels, 8, &ndels, NOW);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(ndels, 1);
    ck_assert_uint_eq(dels[0], a.id);

    /* a reply from before the deletion does not bring a back */
    trl_lists_incoming(l, 5, remote, 3, NULL, 0, NULL, 0, resets, 4, &nres, NOW);
    ck_assert_int_eq(trl_lists_match_key(l, "q", 1, "a", 1, NOW), 0);

    /* the deletion confirmed; c removed elsewhere: gone here too */
    trl_lists_incoming(l, 5, remote + 1, 1, NULL, 0, dels, 1, resets, 4, &nres, NOW);
    n = trl_lists_outgoing(l, puts, 8, dels, 8, &ndels, NOW);
    ck_assert_uint_eq(ndels, 0);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 1);
    ck_assert_uint_eq(got[0].id, b.id);

    /* a new local entry, not yet sent, survives a hash without it */
    a = key_entry(TRL_LIST_DENY, "d", "");
    ck_assert_int_eq(trl_lists_add(l, &a, NOW), TRL_OK);
    trl_lists_incoming(l, 5, remote + 1, 1, NULL, 0, NULL, 0, resets, 4, &nres, NOW);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 2);

    /* Redis lost the hash (new epoch): nothing removed, all sent again */
    trl_lists_incoming(l, 6, NULL, 0, NULL, 0, NULL, 0, resets, 4, &nres, NOW);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 2);
    n = trl_lists_outgoing(l, puts, 8, dels, 8, &ndels, NOW);
    ck_assert_uint_eq(n, 2);

    /* expired entries of the hash are not taken in */
    remote[3] = key_entry(TRL_LIST_DENY, "e", "");
    remote[3].id = 99;
    remote[3].expires_ms = NOW;
    trl_lists_incoming(l, 6, remote + 3, 1, NULL, 0, NULL, 0, resets, 4, &nres, NOW);
    ck_assert_int_eq(trl_lists_match_key(l, "q", 1, "e", 1, NOW), 0);
    free(mem);
}
END_TEST


/* A reset travels as an entry: carried out once per node, never listed. */
START_TEST(lists_resets)
{
    void              *mem = lists_mem();
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   own, other, remote[2], got[4], resets[4], puts[4];
    uint64_t           dels[4], allow, deny;
    size_t             nres, ndels;
    char               buf[512];
    size_t             n;

    own = key_entry(TRL_LIST_RESET, "mallory", "login");
    own.expires_ms = NOW + 60000;
    ck_assert_int_eq(trl_lists_add(l, &own, NOW), TRL_OK);

    /* never listed, counted, matched nor removed through the API */
    ck_assert_uint_eq(trl_lists_get(l, got, 4, NOW), 0);
    trl_lists_count(l, NOW, &allow, &deny);
    ck_assert_uint_eq(allow + deny, 0);
    ck_assert_int_eq(trl_lists_match_key(l, "login", 5, "mallory", 7, NOW),
                     0);
    ck_assert_int_eq(trl_lists_remove(l, own.id, 1), 0);

    /* sent to Redis like an entry */
    ck_assert_uint_eq(trl_lists_outgoing(l, puts, 4, dels, 4, &ndels, NOW),
                      1);
    n = trl_list_encode(&own, buf, sizeof(buf));
    ck_assert_int_eq(trl_list_decode(own.id, buf, n, &got[0]), TRL_OK);
    ck_assert_int_eq(got[0].action, TRL_LIST_RESET);
    ck_assert_int_eq(trl_list_decode(1, "3:4:32:1:0:01020304:", 20, &got[0]),
                     TRL_ERROR);                  /* resets are of keys */

    /* the hash holds it and another node's: only that one is carried out */
    other = key_entry(TRL_LIST_RESET, "bob", "login");
    other.id = 4242;
    other.expires_ms = NOW + 60000;
    remote[0] = own;
    remote[1] = other;
    trl_lists_incoming(l, 9, remote, 2, &own.id, 1, NULL, 0, resets, 4,
                       &nres, NOW);
    ck_assert_uint_eq(nres, 1);
    ck_assert_uint_eq(resets[0].id, 4242);
    ck_assert_int_eq(memcmp(resets[0].key, "bob", 3), 0);

    /* once */
    trl_lists_incoming(l, 9, remote, 2, NULL, 0, NULL, 0, resets, 4, &nres,
                       NOW + 1000);
    ck_assert_uint_eq(nres, 0);

    /* no room to report it: it waits for the next reconcile */
    other.id = 4343;
    trl_lists_incoming(l, 9, &other, 1, NULL, 0, NULL, 0, resets, 0, &nres,
                       NOW);
    ck_assert_uint_eq(nres, 0);
    trl_lists_incoming(l, 9, &other, 1, NULL, 0, NULL, 0, resets, 4, &nres,
                       NOW);
    ck_assert_uint_eq(nres, 1);
    free(mem);
}
END_TEST


Suite *
lists_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("lists");

    tc = unit_tcase(s, "entries", 10);
    tcase_add_test(tc, lists_create_attach);
    tcase_add_test(tc, lists_old_layout_refused);
    tcase_add_test(tc, lists_origin);
    tcase_add_test(tc, lists_view_of_full_lists);
    tcase_add_test(tc, lists_ids_unique_and_js_safe);
    tcase_add_test(tc, lists_match_addresses);
    tcase_add_test(tc, lists_match_keys_expire_remove);
    tcase_add_test(tc, lists_match_random_against_scan);
    tcase_add_test(tc, lists_view_follows_the_lists_asked);
    tcase_add_test(tc, lists_full_then_expired_slots_reused);

    tc = unit_tcase(s, "cluster", 10);
    tcase_add_test(tc, lists_encode_decode);
    tcase_add_test(tc, lists_sync_due_one_at_a_time);
    tcase_add_test(tc, lists_reconcile);
    tcase_add_test(tc, lists_resets);

    return s;
}
