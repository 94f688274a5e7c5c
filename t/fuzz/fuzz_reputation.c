/*
 * fuzz_reputation.c - reputation lists as files, uploads and Redis hold
 * them: never a crash; a list that parses goes through its wire form and
 * back unchanged (same checksum and counts); a table filled with it answers
 * lookups of the addresses the input names the same way before and after
 * a replacement; bytes that are no wire form are refused, never misread;
 * the option grammar never crashes.
 */

#include <stdlib.h>
#include <string.h>

#include "trl_core.h"
#include "trl_reputation.h"


#define FUZZ_TABLE_SIZE  (1024 * 1024)


static void
fuzz_table(const trl_rep_build_t *b, const uint8_t *data, size_t size)
{
    int                     slot, i, before;
    char                    err[256];
    size_t                  off;
    uint8_t                 addr[16];
    trl_rep_t              *rep;
    trl_rep_decl_t          decl;
    trl_rep_match_t         m;
    static void            *mem;

    if (mem == NULL) {
        mem = malloc(FUZZ_TABLE_SIZE);
        if (mem == NULL) {
            abort();
        }
    }

    rep = trl_rep_create(mem, FUZZ_TABLE_SIZE, err, sizeof(err));
    if (rep == NULL) {
        abort();
    }

    memset(&decl, 0, sizeof(decl));
    strcpy(decl.name, "fuzz");
    decl.score = 70;

    if (trl_rep_configure(rep, &decl, 1, &slot, 1, err, sizeof(err))
        != TRL_OK)
    {
        abort();
    }

    if (trl_rep_install(rep, slot, b, 0, "file", 0, 1, err, sizeof(err))
        != TRL_OK)
    {
        return;     /* a list larger than the table: refused, fine */
    }

    /* addresses taken from the input: listed or not, the answer must not
     * change when the same list is installed again (a new generation) */

    for (off = 0; off + 16 <= size && off < 16 * 64; off += 16) {
        memcpy(addr, data + off, 16);

        for (i = 4; i <= 6; i += 2) {
            before = trl_rep_lookup(rep, i, addr, &m);
            if (before && m.score != 70) {
                abort();
            }

            if (off == 0 && i == 4) {
                if (trl_rep_install(rep, slot, b, 0, "api", 0, 2, err,
                                    sizeof(err))
                    != TRL_OK)
                {
                    abort();
                }
            }

            if (trl_rep_lookup(rep, i, addr, &m) != before) {
                abort();
            }
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                   err[256];
    size_t                 n, wn;
    uint32_t               score;
    void                  *wire;
    trl_cidr_t             cidr;
    trl_rep_rules_t        rules;
    trl_rep_terms_t        terms;
    trl_rep_build_t       *b, *again;
    trl_rep_build_info_t   bi, ai;

    memset(&rules, 0, sizeof(rules));
    rules.widest4 = 8;
    rules.widest6 = 32;

    b = trl_rep_parse((const char *) data, size, "fuzz", &rules, err,
                      sizeof(err));

    if (b == NULL) {
        if (memchr(err, '\0', sizeof(err)) == NULL) {
            abort();
        }

    } else {
        trl_rep_build_info(b, &bi);

        n = trl_rep_wire_size(b);
        wire = malloc(n ? n : 1);
        if (wire == NULL) {
            abort();
        }

        wn = trl_rep_wire_encode(b, wire, n);
        if (wn == 0 || wn > n) {
            abort();
        }

        again = trl_rep_wire_decode(wire, wn, err, sizeof(err));
        if (again == NULL) {
            abort();
        }

        trl_rep_build_info(again, &ai);
        if (ai.checksum != bi.checksum || ai.ranges4 != bi.ranges4
            || ai.ranges6 != bi.ranges6)
        {
            abort();
        }

        trl_rep_build_free(again);
        free(wire);

        fuzz_table(b, data, size);
        trl_rep_build_free(b);
    }

    /* the same bytes as a wire form: refused or a valid list */

    b = trl_rep_wire_decode(data, size, err, sizeof(err));
    trl_rep_build_free(b);

    (void) trl_cidr_parse((const char *) data, size, &cidr, err,
                          sizeof(err));
    (void) trl_rep_scale_parse((const char *) data, size, &terms, err,
                               sizeof(err));
    (void) trl_rep_level_parse((const char *) data, size, &terms, err,
                               sizeof(err));
    (void) trl_rep_score_parse((const char *) data, size, &score, err,
                               sizeof(err));

    return 0;
}
