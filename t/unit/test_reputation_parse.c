/*
 * test_reputation_parse.c - reputation lists as text: every format the
 * parser takes, its faults and their messages, the trust and width rules,
 * the wire form, and the grammar of scale=, penalty_level=, deny_score=.
 */

#include "unit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static trl_rep_build_t *
parse_rules(const char *text, const trl_rep_rules_t *rules)
{
    char              err[512];
    trl_rep_build_t  *b;

    err[0] = '\0';
    b = trl_rep_parse(text, strlen(text), "t.list", rules, err, sizeof(err));
    ck_assert_msg(b != NULL, "parse failed: %s", err);
    return b;
}


static trl_rep_build_t *
parse_ok(const char *text)
{
    trl_rep_rules_t  rules = { NULL, 0, 8, 32 };

    return parse_rules(text, &rules);
}


/* The error of a text that must fail. */
static const char *
parse_err(const char *text)
{
    static char       err[512];
    trl_rep_rules_t   rules = { NULL, 0, 8, 32 };
    trl_rep_build_t  *b;

    err[0] = '\0';
    b = trl_rep_parse(text, strlen(text), "/etc/t.list", &rules, err,
                      sizeof(err));
    ck_assert_msg(b == NULL, "\"%s\" parsed", text);
    return err;
}


static trl_rep_build_info_t
info_of(const trl_rep_build_t *b)
{
    trl_rep_build_info_t  info;

    trl_rep_build_info(b, &info);
    return info;
}


/* Whether the build holds addr, through a table (the only lookup there
 * is). */
static int
holds(const trl_rep_build_t *b, const char *addr)
{
    static void       *mem;
    static trl_rep_t  *rep;
    trl_rep_decl_t     decl;
    trl_rep_match_t    m;
    uint8_t            a[16];
    int                slot, family;
    char               err[256];

    if (mem == NULL) {
        mem = unit_shm(1 << 20);
        rep = trl_rep_create(mem, 1 << 20, err, sizeof(err));
        ck_assert_msg(rep != NULL, "%s", err);
        memset(&decl, 0, sizeof(decl));
        strcpy(decl.name, "t");
        decl.score = 50;
        ck_assert_int_eq(trl_rep_configure(rep, &decl, 1, &slot, 0, err,
                                           sizeof(err)), TRL_OK);
    }
    ck_assert_msg(trl_rep_install(rep, 0, b, 0, "file", 0, 0, err,
                                  sizeof(err)) == TRL_OK, "%s", err);
    family = strchr(addr, ':') ? 6 : 4;
    ck_assert_int_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, addr, a),
                     1);
    return trl_rep_lookup(rep, family, a, &m);
}


START_TEST(rep_formats)
{
    trl_rep_build_t       *b;
    trl_rep_build_info_t   i;

    /* FireHOL netset: comments, CIDRs and addresses */
    b = parse_ok("#\n# firehol_level1\n#\n1.10.16.0/20\n1.19.0.0/16\n"
                 "5.6.7.8\n");
    i = info_of(b);
    ck_assert_uint_eq(i.lines, 6);
    ck_assert_uint_eq(i.entries, 3);
    ck_assert_uint_eq(i.ranges4, 3);
    ck_assert(holds(b, "1.10.31.255"));
    ck_assert(!holds(b, "1.10.32.0"));
    ck_assert(holds(b, "5.6.7.8"));
    trl_rep_build_free(b);

    /* IPsum: address, tab, count */
    b = parse_ok("# IPsum\n185.1.2.3\t5\n185.1.2.4\t3\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 2);
    ck_assert_uint_eq(i.ranges4, 1);            /* adjacent: merged */
    trl_rep_build_free(b);

    /* Tor exit list (plain addresses, IPv6 among them) */
    b = parse_ok("171.25.193.20\n2001:67c:289c::20\n");
    i = info_of(b);
    ck_assert_uint_eq(i.ranges4, 1);
    ck_assert_uint_eq(i.ranges6, 1);
    ck_assert(holds(b, "2001:67c:289c::20"));
    ck_assert(!holds(b, "2001:67c:289c::21"));
    trl_rep_build_free(b);

    /* Spamhaus DROP, CRLF, blanks around */
    b = parse_ok("; Spamhaus DROP List 2024/01/01\r\n"
                 "1.10.16.0/20 ; SBL256894\r\n"
                 "  2.56.192.0/22 ; SBL459831  \r\n\r\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 2);
    ck_assert(holds(b, "2.56.195.255"));
    trl_rep_build_free(b);

    /* Spamhaus drop_v4.json: one object a line, then metadata */
    b = parse_ok("{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\","
                 "\"rir\":\"apnic\"}\n"
                 "{\"cidr\": \"2.56.192.0/22\", \"sblid\": \"SBL459831\"}\n"
                 "{\"type\":\"metadata\",\"timestamp\":1700000000,"
                 "\"size\":2,\"records\":2}\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 2);
    trl_rep_build_free(b);

    /* AbuseIPDB: plaintext, and JSON elements with ipAddress */
    b = parse_ok("45.1.2.3\n{\"ipAddress\":\"45.1.2.9\","
                 "\"abuseConfidenceScore\":100},\n{\"ip\":\"45.1.2.10\"}\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 3);
    ck_assert_uint_eq(i.ranges4, 2);
    ck_assert(holds(b, "45.1.2.9"));
    ck_assert(holds(b, "45.1.2.10"));
    trl_rep_build_free(b);

    /* ranges "a-b" and "a - b" */
    b = parse_ok("20.0.0.5-20.0.0.9\n20.0.1.0 - 20.0.1.3  # four\n"
                 "2001:db8::1-2001:db8::ff\n");
    i = info_of(b);
    ck_assert_uint_eq(i.ranges4, 2);
    ck_assert_uint_eq(i.ranges6, 1);
    ck_assert(!holds(b, "20.0.0.4"));
    ck_assert(holds(b, "20.0.0.5"));
    ck_assert(holds(b, "20.0.0.9"));
    ck_assert(!holds(b, "20.0.0.10"));
    ck_assert(holds(b, "20.0.1.3"));
    ck_assert(holds(b, "2001:db8::ff"));
    ck_assert(!holds(b, "2001:db8::100"));
    trl_rep_build_free(b);

    /* IPv4-mapped IPv6 entries are IPv4 */
    b = parse_ok("::ffff:30.1.2.3\n::ffff:30.1.3.0/120\n");
    i = info_of(b);
    ck_assert_uint_eq(i.ranges4, 2);
    ck_assert_uint_eq(i.ranges6, 0);
    ck_assert(holds(b, "30.1.3.255"));
    trl_rep_build_free(b);

    /* nothing but comments: an empty list */
    b = parse_ok("# nothing today\n\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 0);
    ck_assert_uint_eq(i.bytes, 0);
    trl_rep_build_free(b);
}
END_TEST


START_TEST(rep_malformed)
{
    char  line[200];

    ck_assert_str_eq(parse_err("1.2.3.4\n\n<html>\n"),
                     "/etc/t.list:3: not an address: \"<html>\"");
    ck_assert_str_eq(parse_err("<!DOCTYPE html><html><head><title>502 Bad "
                               "Gateway</title></head>"),
                     "/etc/t.list:1: not an address: \"<!DOCTYPE html>"
                     "<html><head><title>502 Ba\"");
    /* a file cut mid-line */
    ck_assert_str_eq(parse_err("1.2.3.0/24\n1.2.4."),
                     "/etc/t.list:2: not an address: \"1.2.4.\"");
    ck_assert_str_eq(parse_err("1.2.3.0/33\n"),
                     "/etc/t.list:1: bad prefix: \"1.2.3.0/33\"");
    ck_assert_str_eq(parse_err("1.2.3.0/\n"),
                     "/etc/t.list:1: bad prefix: \"1.2.3.0/\"");
    ck_assert_str_eq(parse_err("1.2.3.0/2x\n"),
                     "/etc/t.list:1: bad prefix: \"1.2.3.0/2x\"");
    ck_assert_str_eq(parse_err("1.2.3.4/24\n"),
                     "/etc/t.list:1: bits set beyond the prefix /24 (the "
                     "network is 1.2.3.0/24): \"1.2.3.4/24\"");
    ck_assert_str_eq(parse_err("2001:db8::1/64\n"),
                     "/etc/t.list:1: bits set beyond the prefix /64 (the "
                     "network is 2001:db8::/64): \"2001:db8::1/64\"");
    ck_assert_str_eq(parse_err("1.2.3.9-1.2.3.1\n"),
                     "/etc/t.list:1: a range that ends before it starts: "
                     "\"1.2.3.9-1.2.3.1\"");
    ck_assert_str_eq(parse_err("1.2.3.1-2001:db8::1\n"),
                     "/etc/t.list:1: a range from IPv4 to IPv6: "
                     "\"1.2.3.1-2001:db8::1\"");
    ck_assert_str_eq(parse_err("{\"cidr\":\"1.10.16.0/20\",\"sbl"),
                     "/etc/t.list:1: a half-written JSON object: "
                     "\"{\"cidr\":\"1.10.16.0/20\",\"sbl\"");
    ck_assert_str_eq(parse_err("{\"sblid\":\"SBL1\"}"),
                     "/etc/t.list:1: a JSON object without \"cidr\", \"ip\""
                     " or \"ipAddress\": \"{\"sblid\":\"SBL1\"}\"");
    ck_assert_str_eq(parse_err("256.1.1.1\n"),
                     "/etc/t.list:1: not an address: \"256.1.1.1\"");
    ck_assert_str_eq(parse_err("1.2.3.4.5\n"),
                     "/etc/t.list:1: not an address: \"1.2.3.4.5\"");
    ck_assert_str_eq(parse_err("1.2.3.4\r\n2001:db8::g\r\n"),
                     "/etc/t.list:2: not an address: \"2001:db8::g\"");
    /* bytes that are not text are shown as '?' */
    ck_assert_str_eq(parse_err("\x1f\x8b\x08\x00"),
                     "/etc/t.list:1: not an address: \"???\"");

    /* a long line is quoted by its first 40 bytes */
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    ck_assert_str_eq(parse_err(line),
                     "/etc/t.list:1: not an address: "
                     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"");
}
END_TEST


START_TEST(rep_trust_rules)
{
    trl_rep_build_t       *b;
    trl_rep_build_info_t   i;
    trl_rep_rules_t        rules;
    trl_cidr_t             trusted[2];
    char                   err[256];

    /* a list overlapping 10.0.0.0/8 keeps its other entries */
    b = parse_ok("40.0.0.0/24\n10.0.0.0/8\n10.1.2.3\n192.168.1.0/24\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 1);
    ck_assert_uint_eq(i.dropped_trusted, 3);
    ck_assert_uint_eq(i.dropped_wide, 0);
    ck_assert_str_eq(i.dropped_example,
                     "line 2: 10.0.0.0/8 overlaps the trusted 10.0.0.0/8");
    ck_assert(!holds(b, "10.1.2.3"));
    ck_assert(holds(b, "40.0.0.1"));
    trl_rep_build_free(b);

    /* every built-in range, ranges judged like CIDRs */
    b = parse_ok("0.1.2.3\n100.64.0.1\n127.0.0.1\n169.254.1.1\n"
                 "172.31.255.255\n192.168.0.0-192.168.0.9\n::1\n::\n"
                 "fd00::1\nfe80::1\n9.255.255.255-10.0.0.0\n"
                 "100.63.255.255\n100.128.0.0\n172.32.0.0\n");
    i = info_of(b);
    ck_assert_uint_eq(i.dropped_trusted, 11);
    ck_assert_uint_eq(i.entries, 3);
    trl_rep_build_free(b);

    /* the width bound, counted in addresses */
    b = parse_ok("8.0.0.0/7\n11.0.0.0-11.255.255.255\n"
                 "12.0.0.0-13.0.0.0\n2001:db8::/32\n2001:db0::/31\n"
                 "2001:db8::-2001:db9::\n");
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 2);
    ck_assert_uint_eq(i.dropped_wide, 4);
    ck_assert_str_eq(i.dropped_example, "line 1: 8.0.0.0/7 is wider than /8");
    trl_rep_build_free(b);

    /* configured trusted ranges and bounds */
    ck_assert_int_eq(trl_cidr_parse("203.0.113.0/24", 14, &trusted[0], err,
                                    sizeof(err)), TRL_OK);
    ck_assert_int_eq(trl_cidr_parse("2001:db8:1::/48", 15, &trusted[1], err,
                                    sizeof(err)), TRL_OK);
    rules.trusted = trusted;
    rules.ntrusted = 2;
    rules.widest4 = 16;
    rules.widest6 = 48;
    b = parse_rules("203.0.113.128/25\n203.0.112.0-203.0.113.0\n"
                    "2001:db8:1:2::/64\n50.0.0.0/15\n50.2.0.0/16\n"
                    "2001:db8:2::/47\n2001:db8:4::/48\n", &rules);
    i = info_of(b);
    ck_assert_uint_eq(i.dropped_trusted, 3);
    ck_assert_uint_eq(i.dropped_wide, 2);
    ck_assert_uint_eq(i.entries, 2);
    ck_assert_str_eq(i.dropped_example, "line 1: 203.0.113.128/25 overlaps "
                     "the trusted 203.0.113.0/24");
    trl_rep_build_free(b);

    /* widest 0: no bound */
    rules.ntrusted = 0;
    rules.widest4 = 0;
    rules.widest6 = 0;
    b = parse_rules("11.0.0.0-99.255.255.255\n2000::/3\n", &rules);
    i = info_of(b);
    ck_assert_uint_eq(i.entries, 2);
    ck_assert_uint_eq(i.dropped_wide, 0);
    trl_rep_build_free(b);
}
END_TEST


START_TEST(rep_cidr_parse)
{
    trl_cidr_t  c;
    char        err[256];

    ck_assert_int_eq(trl_cidr_parse("192.0.2.0/24", 12, &c, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(c.family, 4);
    ck_assert_uint_eq(c.prefix, 24);
    ck_assert_uint_eq(c.addr[0], 192);
    ck_assert_uint_eq(c.addr[2], 2);
    ck_assert_int_eq(trl_cidr_parse("192.0.2.7", 9, &c, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(c.prefix, 32);
    ck_assert_int_eq(trl_cidr_parse("2001:db8::/32", 13, &c, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(c.family, 6);
    ck_assert_uint_eq(c.prefix, 32);
    ck_assert_uint_eq(c.addr[1], 0x01);
    ck_assert_int_eq(trl_cidr_parse("192.0.2.7/24", 12, &c, err,
                                    sizeof(err)), TRL_ERROR);
    ck_assert_str_eq(err, "bits set beyond the prefix /24 (the network is "
                     "192.0.2.0/24): \"192.0.2.7/24\"");
    ck_assert_int_eq(trl_cidr_parse("nope", 4, &c, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "not an address: \"nope\"");
    ck_assert_int_eq(trl_cidr_parse("1.2.3.4 ", 8, &c, err, sizeof(err)),
                     TRL_ERROR);
}
END_TEST


START_TEST(rep_merge_union)
{
    trl_rep_build_t       *a, *b, *u;
    trl_rep_build_info_t   ia, ib, iu;

    a = parse_ok("40.0.0.0/24\n40.0.2.0/24\n");
    b = parse_ok("40.0.1.0/24\n41.0.0.1\n");
    u = trl_rep_merge(a, b);
    ck_assert_ptr_nonnull(u);
    ia = info_of(a);
    ib = info_of(b);
    iu = info_of(u);
    ck_assert_uint_eq(iu.ranges4, 2);           /* 40.0.0-2 are one */
    ck_assert_uint_eq(iu.entries, ia.entries + ib.entries);
    ck_assert(iu.checksum != ia.checksum);
    ck_assert(holds(u, "40.0.1.7"));
    ck_assert(holds(u, "41.0.0.1"));
    trl_rep_build_free(u);

    /* the same ranges, written otherwise: the same checksum */
    u = parse_ok("40.0.0.0-40.0.2.255\n41.0.0.1/32\n");
    ck_assert_uint_eq(info_of(u).checksum, iu.checksum);
    trl_rep_build_free(u);
    trl_rep_build_free(a);
    trl_rep_build_free(b);
}
END_TEST


START_TEST(rep_wire)
{
    trl_rep_build_t       *b, *d;
    trl_rep_build_info_t   ib, id;
    uint8_t               *buf;
    size_t                 n, i;
    char                   err[256];

    b = parse_ok("40.0.0.0/24\n50.0.0.1-50.0.0.9\n10.0.0.1\n"
                 "2001:db8::/48\n2001:db9::1\n");
    n = trl_rep_wire_size(b);
    buf = malloc(n);
    ck_assert_uint_eq(trl_rep_wire_encode(b, buf, n - 1), 0);
    ck_assert_uint_eq(trl_rep_wire_encode(b, buf, n), n);

    d = trl_rep_wire_decode(buf, n, err, sizeof(err));
    ck_assert_msg(d != NULL, "%s", err);
    ib = info_of(b);
    id = info_of(d);
    ck_assert_uint_eq(id.checksum, ib.checksum);
    ck_assert_uint_eq(id.ranges4, 2);
    ck_assert_uint_eq(id.ranges6, 2);
    ck_assert_uint_eq(id.entries, ib.entries);
    ck_assert_uint_eq(id.dropped_trusted, 1);
    ck_assert(holds(d, "50.0.0.9"));
    trl_rep_build_free(d);

    /* every byte flipped is refused (header, counts, ranges, checksum) */
    for (i = 0; i < n; i++) {
        if (i >= 8 && i < 32) {
            continue;                   /* the counts of entries, dropped */
        }
        buf[i] ^= 0x40;
        d = trl_rep_wire_decode(buf, n, err, sizeof(err));
        ck_assert_msg(d == NULL, "byte %zu flipped was taken", i);
        buf[i] ^= 0x40;
    }
    ck_assert_ptr_null(trl_rep_wire_decode(buf, n - 1, err, sizeof(err)));
    ck_assert_ptr_null(trl_rep_wire_decode(buf, 10, err, sizeof(err)));
    buf[4] = 9;
    ck_assert_ptr_null(trl_rep_wire_decode(buf, n, err, sizeof(err)));
    ck_assert_str_eq(err, "a reputation list of wire version 9 (this one "
                     "reads 1)");
    free(buf);
    trl_rep_build_free(b);

    /* an empty list travels too */
    b = parse_ok("");
    n = trl_rep_wire_size(b);
    buf = malloc(n);
    ck_assert_uint_eq(trl_rep_wire_encode(b, buf, n), n);
    d = trl_rep_wire_decode(buf, n, err, sizeof(err));
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(info_of(d).ranges4, 0);
    trl_rep_build_free(d);
    trl_rep_build_free(b);
    free(buf);
}
END_TEST


START_TEST(rep_terms)
{
    trl_rep_terms_t  t;
    uint32_t         score;
    char             err[256];

#define SCALE(s)  trl_rep_scale_parse(s, strlen(s), &t, err, sizeof(err))
#define LEVEL(s)  trl_rep_level_parse(s, strlen(s), &t, err, sizeof(err))
#define SCORE(s)  trl_rep_score_parse(s, strlen(s), &score, err, sizeof(err))

    ck_assert_int_eq(SCALE("tor:0.5,bad:0.2"), TRL_OK);
    ck_assert_uint_eq(t.n, 2);
    ck_assert_str_eq(t.term[0].name, "tor");
    ck_assert_uint_eq(t.term[0].value, 500);
    ck_assert_str_eq(t.term[1].name, "bad");
    ck_assert_uint_eq(t.term[1].value, 200);
    ck_assert_int_eq(SCALE("a.b-c_d:100,x:0.001,y:2,z:1.25"), TRL_OK);
    ck_assert_uint_eq(t.term[0].value, 100000);
    ck_assert_uint_eq(t.term[1].value, 1);
    ck_assert_uint_eq(t.term[2].value, 2000);
    ck_assert_uint_eq(t.term[3].value, 1250);

    ck_assert_int_eq(SCALE("tor:0"), TRL_ERROR);
    ck_assert_str_eq(err, "bad value in the term \"tor:0\"; expected "
                     "LIST:FACTOR[,LIST:FACTOR...], FACTOR 0.001 to 100 "
                     "(e.g. tor:0.5,bad:0.2)");
    ck_assert_int_eq(SCALE("tor:0.0005"), TRL_ERROR);
    ck_assert_int_eq(SCALE("tor:100.001"), TRL_ERROR);
    ck_assert_int_eq(SCALE("tor:.5"), TRL_ERROR);
    ck_assert_int_eq(SCALE("tor:1."), TRL_ERROR);
    ck_assert_int_eq(SCALE("tor"), TRL_ERROR);
    ck_assert_str_eq(err, "the term \"tor\" has no ':'; expected "
                     "LIST:FACTOR[,LIST:FACTOR...], FACTOR 0.001 to 100 "
                     "(e.g. tor:0.5,bad:0.2)");
    ck_assert_int_eq(SCALE("tor:0.5,"), TRL_ERROR);
    ck_assert_int_eq(SCALE(""), TRL_ERROR);
    ck_assert_int_eq(SCALE("t o r:0.5"), TRL_ERROR);
    ck_assert_str_eq(err, "in the term \"t o r:0.5\": a list's name is 1 to "
                     "31 characters of A-Z a-z 0-9 _ . -");
    ck_assert_int_eq(SCALE("tor:0.5,tor:0.2"), TRL_ERROR);
    ck_assert_str_eq(err, "the list \"tor\" is named twice");
    ck_assert_int_eq(SCALE("a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,"
                           "l:1,m:1,n:1,o:1,p:1,q:1"), TRL_ERROR);
    ck_assert_str_eq(err, "more than 16 terms");

    ck_assert_int_eq(LEVEL("bad:3"), TRL_OK);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_uint_eq(t.term[0].value, 3);
    ck_assert_int_eq(LEVEL("bad:30,tor:1"), TRL_OK);
    ck_assert_int_eq(LEVEL("bad:31"), TRL_ERROR);
    ck_assert_str_eq(err, "bad value in the term \"bad:31\"; expected "
                     "LIST:LEVEL[,LIST:LEVEL...], LEVEL 1 to 30 "
                     "(e.g. bad:3)");
    ck_assert_int_eq(LEVEL("bad:0"), TRL_ERROR);
    ck_assert_int_eq(LEVEL("bad:1.5"), TRL_ERROR);

    ck_assert_int_eq(SCORE("80"), TRL_OK);
    ck_assert_uint_eq(score, 80);
    ck_assert_int_eq(SCORE("1"), TRL_OK);
    ck_assert_int_eq(SCORE("100"), TRL_OK);
    ck_assert_int_eq(SCORE("0"), TRL_ERROR);
    ck_assert_str_eq(err, "expected a score of 1 to 100");
    ck_assert_int_eq(SCORE("101"), TRL_ERROR);
    ck_assert_int_eq(SCORE("8o"), TRL_ERROR);
    ck_assert_int_eq(SCORE(""), TRL_ERROR);

    ck_assert_int_eq(trl_rep_name_check("tor", 3, err, sizeof(err)), TRL_OK);
    ck_assert_int_eq(trl_rep_name_check("0123456789012345678901234567890",
                                        31, err, sizeof(err)), TRL_OK);
    ck_assert_int_eq(trl_rep_name_check("01234567890123456789012345678901",
                                        32, err, sizeof(err)), TRL_ERROR);
    ck_assert_int_eq(trl_rep_name_check("", 0, err, sizeof(err)), TRL_ERROR);
    ck_assert_int_eq(trl_rep_name_check("a/b", 3, err, sizeof(err)),
                     TRL_ERROR);

    ck_assert_uint_eq(trl_rep_scale_limit(10, 500), 5);
    ck_assert_uint_eq(trl_rep_scale_limit(10, 250), 2);     /* down */
    ck_assert_uint_eq(trl_rep_scale_limit(10, 1), 1);       /* at least 1 */
    ck_assert_uint_eq(trl_rep_scale_limit(1000, 100000), TRL_RATE_MAX_LIMIT);
    ck_assert_uint_eq(trl_rep_scale_limit(7, 2000), 14);
#undef SCALE
#undef LEVEL
#undef SCORE
}
END_TEST


Suite *
reputation_parse_suite(void)
{
    Suite  *s = suite_create("reputation_parse");
    TCase  *tc = unit_tcase(s, "parse", 30);

    tcase_add_test(tc, rep_formats);
    tcase_add_test(tc, rep_malformed);
    tcase_add_test(tc, rep_trust_rules);
    tcase_add_test(tc, rep_cidr_parse);
    tcase_add_test(tc, rep_merge_union);
    tcase_add_test(tc, rep_wire);
    tcase_add_test(tc, rep_terms);
    return s;
}
