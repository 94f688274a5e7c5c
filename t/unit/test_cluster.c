/*
 * test_cluster.c - Redis Cluster arithmetic: key slots (the values a real
 * redis-server 7.0 gave for CLUSTER KEYSLOT), MOVED/ASK replies and the
 * slot map.
 */

#include "unit.h"

#include <string.h>

#include "trl_cluster.h"


static const struct {
    const char  *key;
    unsigned     slot;
} slots[] = {
    { "123456789", 12739 },         /* the CRC16-XMODEM check value 0x31c3 */
    { "foo", 12182 },
    { "bar", 5061 },
    { "user1000", 3443 },
    { "{user1000}.following", 3443 },
    { "foo{}{bar}", 8363 },         /* an empty tag: the whole key */
    { "foo{{bar}}zap", 4015 },      /* the tag is "{bar" */
    { "foo{bar}{zap}", 5061 },      /* the first tag: "bar" */
    { "", 0 },
    { "trl:{login:alice}", 14094 },
    { "{", 4092 },
    { "}{", 12793 },
    { "a{b", 13340 },
};


START_TEST(key_slots)
{
    const char  *k = slots[_i].key;

    ck_assert_msg(trl_cluster_slot(k, strlen(k)) == slots[_i].slot,
                  "\"%s\": slot %u, Redis says %u", k,
                  trl_cluster_slot(k, strlen(k)), slots[_i].slot);
}
END_TEST


START_TEST(tag_groups_keys)
{
    /* every Redis key of one zone key shares its slot, whatever follows */
    ck_assert_uint_eq(trl_cluster_slot("trl:{z:k}", 9),
                      trl_cluster_slot("z:k", 3));
    ck_assert_uint_eq(trl_cluster_slot("other{z:k}tail", 14),
                      trl_cluster_slot("z:k", 3));
    /* bytes after len are not read */
    ck_assert_uint_eq(trl_cluster_slot("foo{bar}", 3), 12182);
}
END_TEST


START_TEST(redirects)
{
    char      host[TRL_CLUSTER_HOST_MAX];
    unsigned  slot, port;

#define R(s) s, sizeof(s) - 1

    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 3999 127.0.0.1:6381"),
                                          &slot, host, &port),
                     TRL_CLUSTER_MOVED);
    ck_assert_uint_eq(slot, 3999);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 6381);

    ck_assert_int_eq(trl_cluster_redirect(R("ASK 16383 10.0.0.2:7000"),
                                          &slot, host, &port),
                     TRL_CLUSTER_ASK);
    ck_assert_uint_eq(slot, 16383);
    ck_assert_str_eq(host, "10.0.0.2");

    /* IPv6: the port follows the last colon; an empty host is allowed */
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 ::1:7001"), &slot, host,
                                          &port), TRL_CLUSTER_MOVED);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 7001);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 :7001"), &slot, host,
                                          &port), TRL_CLUSTER_MOVED);
    ck_assert_str_eq(host, "");

    /* anything else is not a redirection */
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 16384 h:1"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 h:0"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 h:65536"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 h"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED x h:1"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED 1 h:1 x"), &slot, host,
                                          &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("CLUSTERDOWN The cluster is "
                                            "down"), &slot, host, &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("READONLY You can't write"),
                                          &slot, host, &port), 0);
    ck_assert_int_eq(trl_cluster_redirect(R("MOVED "), &slot, host, &port),
                     0);
    ck_assert_int_eq(trl_cluster_redirect(
        R("MOVED 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaa:1"), &slot, host, &port), 0);   /* host too long */

#undef R
}
END_TEST


START_TEST(slot_map)
{
    trl_slot_map_t  *map = trl_slot_map_create();
    unsigned         port;
    int              a, b, c;

    ck_assert_ptr_nonnull(map);
    ck_assert_uint_eq(trl_slot_map_unserved(map), TRL_CLUSTER_SLOTS);
    ck_assert_int_eq(trl_slot_map_node(map, 0), -1);

    a = trl_slot_map_add(map, 0, 5460, "127.0.0.1", 9, 7000);
    b = trl_slot_map_add(map, 5461, 10922, "127.0.0.1", 9, 7001);
    c = trl_slot_map_add(map, 10923, 16383, "127.0.0.1", 9, 7002);
    ck_assert_int_eq(a, 0);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(c, 2);
    ck_assert_uint_eq(trl_slot_map_unserved(map), 0);
    ck_assert_uint_eq(trl_slot_map_nodes(map), 3);

    ck_assert_int_eq(trl_slot_map_node(map, 5460), a);
    ck_assert_int_eq(trl_slot_map_node(map, 5461), b);
    ck_assert_int_eq(trl_slot_map_node(map, 16383), c);
    ck_assert_int_eq(trl_slot_map_node(map, 16384), -1);
    ck_assert_str_eq(trl_slot_map_host(map, 1, &port), "127.0.0.1");
    ck_assert_uint_eq(port, 7001);
    ck_assert_ptr_null(trl_slot_map_host(map, 3, &port));

    /* a node named again keeps its index; a MOVED slot changes hands */
    ck_assert_int_eq(trl_slot_map_add(map, 0, 0, "127.0.0.1", 9, 7001), b);
    ck_assert_int_eq(trl_slot_map_node(map, 0), b);
    ck_assert_int_eq(trl_slot_map_move(map, 100, "127.0.0.1", 9, 7003), 3);
    ck_assert_int_eq(trl_slot_map_node(map, 100), 3);
    ck_assert_int_eq(trl_slot_map_node(map, 101), a);

    /* refused: bad ranges and addresses, too many nodes */
    ck_assert_int_eq(trl_slot_map_add(map, 5, 4, "h", 1, 1), -1);
    ck_assert_int_eq(trl_slot_map_add(map, 0, 16384, "h", 1, 1), -1);
    ck_assert_int_eq(trl_slot_map_add(map, 0, 0, "h", 1, 0), -1);
    ck_assert_int_eq(trl_slot_map_add(map, 0, 0, "h", 1, 65536), -1);
    ck_assert_int_eq(trl_slot_map_node(map, 0), b);

    trl_slot_map_destroy(map);

    map = trl_slot_map_create();
    for (a = 0; a < TRL_CLUSTER_NODES_MAX; a++) {
        ck_assert_int_eq(trl_slot_map_add(map, (unsigned) a, (unsigned) a,
                                          "h", 1, (unsigned) (1000 + a)), a);
    }
    ck_assert_int_eq(trl_slot_map_add(map, 100, 100, "h", 1, 9999), -1);
    ck_assert_int_eq(trl_slot_map_node(map, 100), -1);
    ck_assert_uint_eq(trl_slot_map_unserved(map),
                      TRL_CLUSTER_SLOTS - TRL_CLUSTER_NODES_MAX);
    trl_slot_map_destroy(map);
}
END_TEST


Suite *
cluster_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("cluster");

    tc = unit_tcase(s, "slots", 10);
    tcase_add_loop_test(tc, key_slots, 0,
                        (int) (sizeof(slots) / sizeof(slots[0])));
    tcase_add_test(tc, tag_groups_keys);
    tcase_add_test(tc, redirects);
    tcase_add_test(tc, slot_map);

    return s;
}
