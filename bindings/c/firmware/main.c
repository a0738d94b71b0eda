/*
 * mqseal test firmware: the no_std C library (libmqseal_ffi.a for thumbv7em-none-eabihf) on an
 * emulated Cortex-M4F (QEMU mps2-an386), output and exit status through semihosting.
 *
 * It replays the spec vectors (the JSON files in spec/vectors through vectors.h, generated at
 * build time by bindings/c/tests/vectors_to_c.py): seals every envelope vector from its seeds and
 * its salt (protocol v2: a sealer of mqseal_sealer_new_with_random whose callback hands out the
 * vector's 8 salt bytes) and compares the bytes, opens every positive envelope, gets every
 * negative vector's code, issues and accepts the grant vectors and gets every negative grant's
 * code; then draws randomness from the firmware's registered generator (and gets the documented
 * codes without one or with a failing one: mqseal_sealer_new needs one), checks that two
 * sealers at the same sequence number seal the same payload differently, that time comes only
 * from the caller, refuses replays, saves and restores a replay window, reassembles a message
 * delivered in pieces (esp-mqtt and lwIP style), and, last, that a panic (an allocation failure)
 * reaches the firmware's panic hook with its message and never returns.
 *
 * Built with -DMQSEAL_ARENA against the library with the feature `arena`, mqseal's heap is a
 * 32 KiB static arena handed over first (mqseal_heap_init, with a PRIMASK critical section
 * registered before it); the allocation failure of the last test is then a full arena. Without
 * it, the arena functions must return MQSEAL_ERR_UNSUPPORTED.
 *
 * Prints every failure, then "N passed, N failed"; exits with 0 only if none failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware.h"
#include "mqseal.h"
#include "vectors.h"

static unsigned passed, failed;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (cond) {                                                                               \
            passed++;                                                                             \
        } else {                                                                                  \
            failed++;                                                                             \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                \
            printf(__VA_ARGS__);                                                                  \
            printf("\n");                                                                         \
        }                                                                                         \
    } while (0)

#define CHECK_RC(expr, want, ctx)                                                                 \
    do {                                                                                          \
        mqseal_result rc_ = (expr);                                                               \
        CHECK(rc_ == (mqseal_result)(want), "%s: got %s (%u), want %s", (ctx),                    \
              mqseal_error_name(rc_), (unsigned)rc_, mqseal_error_name(want));                    \
    } while (0)

/* A failed set-up step ends the run (later checks would only cascade). */
#define REQUIRE_OK(expr)                                                                          \
    do {                                                                                          \
        mqseal_result rc_ = (expr);                                                               \
        if (rc_ != MQSEAL_OK) {                                                                   \
            printf("FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, mqseal_error_name(rc_));  \
            fw_exit(2);                                                                           \
        }                                                                                         \
    } while (0)

/* ---- helpers ------------------------------------------------------------------------------- */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'd buffer (at least 1 byte, so that empty inputs are non-NULL). */
static uint8_t *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n ? n : 1);
    if (!out) {
        printf("FATAL: out of memory\n");
        fw_exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) fw_exit(2);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n;
    return out;
}

static void unhex_fixed(const char *hex, uint8_t *out, size_t n) {
    size_t len;
    uint8_t *bytes = unhex(hex, &len);
    if (len != n) fw_exit(2);
    memcpy(out, bytes, n);
    free(bytes);
}

static mqseal_tree_key *load_key(const vec_key *k) {
    uint8_t secret[MQSEAL_KEY_LEN];
    mqseal_tree_key *key = NULL;
    unhex_fixed(k->secret, secret, sizeof secret);
    REQUIRE_OK(mqseal_tree_key_new(k->filter, k->epoch, secret, sizeof secret, &key));
    if (k->not_before || k->not_after)
        REQUIRE_OK(mqseal_tree_key_set_validity(key, k->not_before, k->not_after));
    return key;
}

static mqseal_identity *identity_from_hex(const char *seed_hex) {
    uint8_t seed[MQSEAL_SEED_LEN];
    mqseal_identity *id = NULL;
    unhex_fixed(seed_hex, seed, sizeof seed);
    REQUIRE_OK(mqseal_identity_from_seed(seed, sizeof seed, &id));
    return id;
}

/* A scripted mqseal_random_fn for the vectors: hands out exactly `len` bytes (a vector's salt),
 * refuses any other length, and counts the calls. */
typedef struct {
    const uint8_t *bytes;
    size_t len;
    unsigned calls;
} scripted_random;

static int scripted_fill(void *ctx, uint8_t *buf, size_t len) {
    scripted_random *r = ctx;
    r->calls++;
    if (len != r->len) return 1;
    memcpy(buf, r->bytes, len);
    return 0;
}

/* ---- spec vectors -------------------------------------------------------------------------- */

static void test_envelopes(void) {
    CHECK(N_ENVELOPES > 0, "envelope vectors present");
    for (size_t i = 0; i < N_ENVELOPES; i++) {
        const vec_envelope *v = &ENVELOPES[i];
        size_t payload_len, want_len, sealed_len = 0;
        uint8_t *payload = unhex(v->payload, &payload_len);
        uint8_t *want = unhex(v->sealed, &want_len);
        mqseal_identity *sender = identity_from_hex(v->sender_seed);
        mqseal_tree_key *sealer_key = load_key(&v->sealer_key);
        mqseal_tree_key *opener_key = load_key(&v->opener_key);
        mqseal_sealer *sealer = NULL;
        mqseal_seal_options options = {v->retain, v->has_timestamp, v->timestamp};
        uint8_t salt[MQSEAL_SALT_LEN], key_id[MQSEAL_KEY_ID_LEN];
        unhex_fixed(v->salt, salt, sizeof salt);
        unhex_fixed(v->key_id, key_id, sizeof key_id);

        /* Seal from the vector's seeds, its sequence number and its salt (the sealer's random
         * bytes, spec 4.7): exactly the vector's bytes. No generator is registered yet: a sealer
         * with its own callback needs none. */
        scripted_random random = {salt, sizeof salt, 0};
        REQUIRE_OK(mqseal_sealer_new_with_random(sender, v->profile, v->seq, scripted_fill,
                                                 &random, &sealer));
        REQUIRE_OK(mqseal_sealer_add_key(sealer, sealer_key));
        size_t cap = payload_len + MQSEAL_MAX_OVERHEAD_SIGNED;
        uint8_t *sealed = malloc(cap);
        CHECK_RC(mqseal_seal(sealer, v->topic, payload, payload_len, &options, sealed, cap,
                             &sealed_len),
                 MQSEAL_OK, v->name);
        CHECK(sealed_len == want_len && memcmp(sealed, want, want_len) == 0,
              "%s: the firmware seals exactly the vector's bytes", v->name);
        CHECK(random.calls == 1, "%s: one salt drawn per message (%u calls)", v->name,
              random.calls);
        CHECK(sealed_len - payload_len == v->overhead &&
                  sealed_len <= mqseal_sealed_max_len(v->profile, payload_len),
              "%s: overhead %zu", v->name, sealed_len - payload_len);
        mqseal_header header;
        CHECK_RC(mqseal_inspect(want, want_len, &header), MQSEAL_OK, v->name);
        CHECK(header.seq == v->seq && header.profile == v->profile &&
                  header.epoch == v->sealer_key.epoch &&
                  memcmp(header.key_id, key_id, sizeof key_id) == 0 &&
                  memcmp(header.salt, salt, sizeof salt) == 0,
              "%s: header (seq, profile, epoch, key id, salt)", v->name);

        /* Open the vector's bytes, then refuse them again as a replay (a duplicate with DUP). */
        mqseal_opener *opener = NULL;
        uint8_t sender_pub[MQSEAL_PUBLIC_IDENTITY_LEN];
        unhex_fixed(v->sender_public, sender_pub, sizeof sender_pub);
        REQUIRE_OK(mqseal_opener_new(NULL, &opener));
        if (v->profile == MQSEAL_PROFILE_GROUP_MAC) /* trusted for group-mac on "#" */
            REQUIRE_OK(mqseal_opener_trust_group_mac_sender(opener, sender_pub,
                                                            sizeof sender_pub, "#"));
        else
            REQUIRE_OK(mqseal_opener_trust_sender(opener, sender_pub, sizeof sender_pub));
        REQUIRE_OK(mqseal_opener_add_key(opener, opener_key));
        mqseal_delivery delivery = {v->retain, false, false, 0};
        mqseal_opened info;
        uint8_t *plain = malloc(want_len);
        CHECK_RC(mqseal_open(opener, v->topic, want, want_len, &delivery, plain, want_len, &info),
                 MQSEAL_OK, v->name);
        CHECK(info.payload_len == payload_len && memcmp(plain, payload, payload_len) == 0,
              "%s: payload", v->name);
        CHECK(info.seq == v->seq && info.profile == v->profile && info.retain == v->retain &&
                  memcmp(info.sender, sender_pub, sizeof sender_pub) == 0,
              "%s: opened info", v->name);
        CHECK_RC(mqseal_open(opener, v->topic, want, want_len, &delivery, plain, want_len, &info),
                 MQSEAL_ERR_REPLAY, v->name);
        delivery.duplicate = true;
        CHECK_RC(mqseal_open(opener, v->topic, want, want_len, &delivery, plain, want_len, &info),
                 MQSEAL_ERR_DUPLICATE, v->name);

        free(plain);
        free(sealed);
        free(payload);
        free(want);
        mqseal_opener_free(opener);
        mqseal_sealer_free(sealer);
        mqseal_tree_key_free(sealer_key);
        mqseal_tree_key_free(opener_key);
        mqseal_identity_free(sender);
    }
}

static void test_envelopes_negative(void) {
    CHECK(N_NEGATIVES > 0, "negative envelope vectors present");
    for (size_t i = 0; i < N_NEGATIVES; i++) {
        const vec_negative *v = &NEGATIVES[i];
        mqseal_open_policy policy = {v->require_timestamp, v->has_max_age, v->max_age,
                                     v->max_future_skew, v->validity_grace};
        mqseal_opener *opener = NULL;
        REQUIRE_OK(mqseal_opener_new(&policy, &opener));
        size_t trusted_len;
        uint8_t *trusted = unhex(v->trusted, &trusted_len);
        for (size_t t = 0; t < v->n_trusted; t++)
            REQUIRE_OK(mqseal_opener_trust_sender(opener, trusted + 64 * t, 64));
        for (size_t g = 0; g < v->n_group_mac; g++) {
            uint8_t sender[64];
            unhex_fixed(v->group_mac[g].sender, sender, sizeof sender);
            REQUIRE_OK(mqseal_opener_trust_group_mac_sender(opener, sender, sizeof sender,
                                                            v->group_mac[g].filter));
        }
        for (size_t k = 0; k < v->n_keys; k++) {
            mqseal_tree_key *key = load_key(&v->keys[k]);
            REQUIRE_OK(mqseal_opener_add_key(opener, key));
            mqseal_tree_key_free(key);
        }
        for (size_t r = 0; r < v->n_retired; r++)
            REQUIRE_OK(mqseal_opener_retire_key(opener, v->retired[r].filter, v->retired[r].epoch,
                                                v->retired[r].not_after));
        mqseal_opened info;
        for (size_t p = 0; p < v->n_preload; p++) {
            size_t len;
            uint8_t *msg = unhex(v->preload[p].sealed, &len);
            uint8_t *out = malloc(len ? len : 1);
            mqseal_delivery live = {false, false, v->has_now, v->now};
            CHECK_RC(mqseal_open(opener, v->preload[p].topic, msg, len, &live, out, len, &info),
                     MQSEAL_OK, v->name);
            free(out);
            free(msg);
        }
        size_t len;
        uint8_t *msg = unhex(v->sealed, &len);
        size_t cap = len + 16;
        uint8_t *out = malloc(cap);
        memset(out, 0xEE, cap);
        mqseal_delivery delivery = {v->retained, v->duplicate, v->has_now, v->now};
        mqseal_result rc = mqseal_open(opener, v->topic, msg, len, &delivery, out, cap, &info);
        CHECK(rc == v->code && strcmp(mqseal_error_name(rc), v->error) == 0,
              "%s: got %s, want %s", v->name, mqseal_error_name(rc), v->error);
        int no_plaintext = 1;
        for (size_t b = 0; b < cap; b++) no_plaintext &= out[b] == 0xEE || out[b] == 0;
        CHECK(no_plaintext, "%s: no plaintext left on failure", v->name);
        free(out);
        free(msg);
        free(trusted);
        mqseal_opener_free(opener);
    }
}

static void test_grants(void) {
    CHECK(N_GRANTS > 0, "grant vectors present");
    for (size_t i = 0; i < N_GRANTS; i++) {
        const vec_grant *g = &GRANTS[i];
        mqseal_identity *issuer = identity_from_hex(g->issuer_seed);
        mqseal_identity *recipient = identity_from_hex(g->recipient_seed);
        mqseal_tree_key *key = load_key(&g->key);
        uint8_t recipient_pub[64], issuer_pub[64], ikm[MQSEAL_GRANT_IKM_LEN];
        size_t want_len, len = 0;
        uint8_t *want = unhex(g->grant, &want_len);
        unhex_fixed(g->ikm, ikm, sizeof ikm);
        unhex_fixed(g->issuer_public, issuer_pub, sizeof issuer_pub);
        REQUIRE_OK(mqseal_identity_public(recipient, recipient_pub, sizeof recipient_pub));
        size_t cap = strlen(g->key.filter) + MQSEAL_GRANT_MAX_OVERHEAD;
        uint8_t *grant = malloc(cap);
        CHECK_RC(mqseal_grant_issue_with_ikm(issuer, recipient_pub, 64, key, ikm, sizeof ikm,
                                             grant, cap, &len),
                 MQSEAL_OK, "issue_with_ikm");
        CHECK(len == want_len && memcmp(grant, want, len) == 0, "grant %zu: exact bytes", i);

        mqseal_tree_key *got = NULL;
        CHECK_RC(mqseal_grant_accept(want, want_len, recipient, issuer_pub, 1, &got), MQSEAL_OK,
                 "accept the grant vector");
        if (got) {
            uint8_t secret[32], want_secret[32];
            unhex_fixed(g->key.secret, want_secret, sizeof want_secret);
            REQUIRE_OK(mqseal_tree_key_secret(got, secret, sizeof secret));
            CHECK(memcmp(secret, want_secret, 32) == 0, "grant %zu: accepted key", i);
            mqseal_tree_key_free(got);
        }
        got = NULL;
        CHECK_RC(mqseal_grant_accept(want, want_len, issuer, issuer_pub, 1, &got),
                 MQSEAL_ERR_GRANT_NOT_FOR_US, "grant to another identity");
        free(grant);
        free(want);
        mqseal_tree_key_free(key);
        mqseal_identity_free(issuer);
        mqseal_identity_free(recipient);
    }
    /* Grants inside their issuers' scopes (spec 8.1), accepted with those scopes. */
    CHECK(N_GRANTS_IN_SCOPE > 0, "in-scope grant vectors present");
    for (size_t i = 0; i < N_GRANTS_IN_SCOPE; i++) {
        const vec_grant_in_scope *g = &GRANTS_IN_SCOPE[i];
        mqseal_identity *me = identity_from_hex(g->recipient_seed);
        size_t trusted_len, grant_len;
        uint8_t *trusted = unhex(g->trusted, &trusted_len);
        uint8_t *grant = unhex(g->grant, &grant_len);
        mqseal_issuer issuers[4];
        REQUIRE_OK(g->n_trusted <= 4 ? MQSEAL_OK : MQSEAL_ERR_INVALID_ARGUMENT);
        for (size_t t = 0; t < g->n_trusted; t++)
            issuers[t] = (mqseal_issuer){trusted + 64 * t, g->scopes[t].filters, g->scopes[t].n};
        mqseal_tree_key *got = NULL;
        CHECK_RC(mqseal_grant_accept_scoped(grant, grant_len, me, issuers, g->n_trusted, &got),
                 MQSEAL_OK, "accept an in-scope grant vector");
        if (got) {
            uint8_t secret[32], want_secret[32];
            unhex_fixed(g->key.secret, want_secret, sizeof want_secret);
            REQUIRE_OK(mqseal_tree_key_secret(got, secret, sizeof secret));
            CHECK(memcmp(secret, want_secret, 32) == 0, "in-scope grant %zu: accepted key", i);
            mqseal_tree_key_free(got);
        }
        free(trusted);
        free(grant);
        mqseal_identity_free(me);
    }
    for (size_t i = 0; i < N_GRANTS_NEGATIVE; i++) {
        const vec_grant_negative *n = &GRANTS_NEGATIVE[i];
        mqseal_identity *me = identity_from_hex(n->recipient_seed);
        size_t trusted_len, grant_len;
        uint8_t *trusted = unhex(n->trusted, &trusted_len);
        uint8_t *grant = unhex(n->grant, &grant_len);
        mqseal_tree_key *got = NULL;
        /* Each issuer for its scopes (spec 8.1), or without scopes for the whole tree. */
        static const char *const whole_tree[] = {"#"};
        mqseal_issuer issuers[4];
        REQUIRE_OK(n->n_trusted <= 4 ? MQSEAL_OK : MQSEAL_ERR_INVALID_ARGUMENT);
        for (size_t t = 0; t < n->n_trusted; t++)
            issuers[t] = n->has_scopes
                             ? (mqseal_issuer){trusted + 64 * t, n->scopes[t].filters,
                                               n->scopes[t].n}
                             : (mqseal_issuer){trusted + 64 * t, whole_tree, 1};
        mqseal_result rc =
            mqseal_grant_accept_scoped(grant, grant_len, me, issuers, n->n_trusted, &got);
        CHECK(rc == n->code && got == NULL, "negative grant %s: got %s, want %s", n->name,
              mqseal_error_name(rc), n->error);
        mqseal_tree_key_free(got);
        free(trusted);
        free(grant);
        mqseal_identity_free(me);
    }
}

/* ---- replay windows across a restart -------------------------------------------------------- */

static void test_replay_window_persistence(void) {
    const vec_envelope *v = &ENVELOPES[0];
    mqseal_identity *sender = identity_from_hex(v->sender_seed);
    mqseal_tree_key *key = load_key(&v->sealer_key);
    uint8_t pub[64], fp[32];
    REQUIRE_OK(mqseal_identity_public(sender, pub, sizeof pub));
    REQUIRE_OK(mqseal_identity_fingerprint(sender, fp, sizeof fp));
    mqseal_sealer *sealer = NULL;
    /* The registered generator (test_randomness) salts the messages. */
    REQUIRE_OK(mqseal_sealer_new(sender, MQSEAL_PROFILE_SIGNED, 41, &sealer));
    REQUIRE_OK(mqseal_sealer_add_key(sealer, key));
    REQUIRE_OK(mqseal_sealer_set_sequence(sealer, 41, 1000));
    uint8_t m41[MQSEAL_SEALED_BUFFER_LEN(5)], m42[sizeof m41], out[sizeof m41];
    size_t l41, l42;
    REQUIRE_OK(mqseal_seal(sealer, v->topic, (const uint8_t *)"first", 5, NULL, m41, sizeof m41,
                           &l41));
    REQUIRE_OK(mqseal_seal(sealer, v->topic, (const uint8_t *)"other", 5, NULL, m42, sizeof m42,
                           &l42));

    mqseal_opener *before = NULL, *after = NULL;
    mqseal_opened info;
    REQUIRE_OK(mqseal_opener_new(NULL, &before));
    REQUIRE_OK(mqseal_opener_trust_sender(before, pub, sizeof pub));
    REQUIRE_OK(mqseal_opener_add_key(before, key));
    CHECK_RC(mqseal_open(before, v->topic, m41, l41, NULL, out, sizeof out, &info), MQSEAL_OK,
             "open seq 41");
    CHECK_RC(mqseal_open(before, v->topic, m41, l41, NULL, out, sizeof out, &info),
             MQSEAL_ERR_REPLAY, "replay of seq 41 refused");
    uint8_t window[MQSEAL_REPLAY_WINDOW_LEN];
    CHECK_RC(mqseal_opener_replay_window(before, fp, sizeof fp, info.profile, info.epoch,
                                         v->topic, window, sizeof window),
             MQSEAL_OK, "save the replay window");
    mqseal_opener_free(before);

    /* "Reboot": a new opener restores the saved window and still refuses the replay. */
    REQUIRE_OK(mqseal_opener_new(NULL, &after));
    REQUIRE_OK(mqseal_opener_trust_sender(after, pub, sizeof pub));
    REQUIRE_OK(mqseal_opener_add_key(after, key));
    CHECK_RC(mqseal_opener_set_replay_window(after, fp, sizeof fp, info.profile, info.epoch,
                                             v->topic, window, sizeof window),
             MQSEAL_OK, "restore the replay window");
    CHECK_RC(mqseal_open(after, v->topic, m41, l41, NULL, out, sizeof out, &info),
             MQSEAL_ERR_REPLAY, "replay refused after the restore");
    CHECK_RC(mqseal_open(after, v->topic, m42, l42, NULL, out, sizeof out, &info), MQSEAL_OK,
             "the next message is accepted after the restore");
    CHECK(info.payload_len == 5 && memcmp(out, "other", 5) == 0, "payload after the restore");
    CHECK_RC(mqseal_opener_set_replay_window(after, fp, sizeof fp, info.profile, info.epoch,
                                             v->topic, window, sizeof window - 1),
             MQSEAL_ERR_MALFORMED, "a truncated window is refused");
    mqseal_opener_free(after);
    mqseal_sealer_free(sealer);
    mqseal_tree_key_free(key);
    mqseal_identity_free(sender);
}

/* ---- key validity without a clock ---------------------------------------------------------- */

/* A firmware build has no clock: a key with a validity limit is used only at a time the caller
 * gives (the message's timestamp when sealing, the delivery's now when opening); without one it
 * is refused (fail closed), and a key granted ahead of time takes over at its not_before. */
static void test_key_validity_without_clock(void) {
    uint8_t secret[MQSEAL_KEY_LEN], pub[64];
    memset(secret, 0x51, sizeof secret);
    mqseal_tree_key *e1 = NULL, *e2 = NULL;
    REQUIRE_OK(mqseal_tree_key_new("fw/#", 1, secret, sizeof secret, &e1));
    secret[0] ^= 1;
    REQUIRE_OK(mqseal_tree_key_new("fw/#", 2, secret, sizeof secret, &e2));
    REQUIRE_OK(mqseal_tree_key_set_validity(e2, 1000, 2000));
    mqseal_identity *me = identity_from_hex(ENVELOPES[0].sender_seed);
    REQUIRE_OK(mqseal_identity_public(me, pub, sizeof pub));
    mqseal_sealer *sealer = NULL;
    REQUIRE_OK(mqseal_sealer_new(me, MQSEAL_PROFILE_SIGNED, 0, &sealer));
    REQUIRE_OK(mqseal_sealer_add_key(sealer, e1));
    REQUIRE_OK(mqseal_sealer_add_key(sealer, e2));
    uint8_t m1[MQSEAL_SEALED_BUFFER_LEN(1)], m2[sizeof m1], out[sizeof m1];
    size_t l1, l2;
    mqseal_seal_options at999 = {false, true, 999}, at1000 = {false, true, 1000};
    CHECK_RC(mqseal_seal(sealer, "fw/t", (const uint8_t *)"x", 1, NULL, m1, sizeof m1, &l1),
             MQSEAL_ERR_KEY_EXPIRED, "no time: the pending epoch 2 cannot be placed");
    REQUIRE_OK(mqseal_seal(sealer, "fw/t", (const uint8_t *)"1", 1, &at999, m1, sizeof m1, &l1));
    REQUIRE_OK(mqseal_seal(sealer, "fw/t", (const uint8_t *)"2", 1, &at1000, m2, sizeof m2, &l2));
    mqseal_header h1, h2;
    REQUIRE_OK(mqseal_inspect(m1, l1, &h1));
    REQUIRE_OK(mqseal_inspect(m2, l2, &h2));
    CHECK(h1.epoch == 1 && h2.epoch == 2, "epoch 2 from its not_before on, no new grant");

    mqseal_opener *opener = NULL;
    mqseal_opened info;
    REQUIRE_OK(mqseal_opener_new(NULL, &opener));
    REQUIRE_OK(mqseal_opener_trust_sender(opener, pub, sizeof pub));
    REQUIRE_OK(mqseal_opener_add_key(opener, e1));
    REQUIRE_OK(mqseal_opener_add_key(opener, e2));
    CHECK_RC(mqseal_open(opener, "fw/t", m2, l2, NULL, out, sizeof out, &info),
             MQSEAL_ERR_KEY_EXPIRED, "no time: a limited key is refused");
    mqseal_delivery at1500 = {false, false, true, 1500};
    CHECK_RC(mqseal_open(opener, "fw/t", m2, l2, &at1500, out, sizeof out, &info), MQSEAL_OK,
             "opened with the delivery's time");
    CHECK_RC(mqseal_open(opener, "fw/t", m1, l1, NULL, out, sizeof out, &info), MQSEAL_OK,
             "a key without a limit needs no time");
    mqseal_opener_free(opener);
    mqseal_sealer_free(sealer);
    mqseal_tree_key_free(e2);
    mqseal_tree_key_free(e1);
    mqseal_identity_free(me);
}

/* ---- fragmented delivery ------------------------------------------------------------------- */

/* Opens the first envelope vector delivered in pieces of `piece` bytes through a reassembly into
 * a caller buffer, as an esp-mqtt MQTT_EVENT_DATA handler (offset, total) or an lwIP
 * mqtt_incoming_data_cb (pieces in order, the last flagged MQTT_DATA_FLAG_LAST) would. */
static void open_in_pieces(size_t piece, const char *style) {
    const vec_envelope *v = &ENVELOPES[0];
    size_t len, payload_len;
    uint8_t *sealed = unhex(v->sealed, &len);
    uint8_t *payload = unhex(v->payload, &payload_len);
    uint8_t pub[64];
    unhex_fixed(v->sender_public, pub, sizeof pub);
    mqseal_tree_key *key = load_key(&v->opener_key);
    mqseal_opener *opener = NULL;
    REQUIRE_OK(mqseal_opener_new(NULL, &opener));
    REQUIRE_OK(mqseal_opener_trust_group_mac_sender(opener, pub, sizeof pub, "#"));
    REQUIRE_OK(mqseal_opener_add_key(opener, key));

    static uint8_t rx[1024]; /* the firmware's receive buffer */
    mqseal_reassembly r;
    bool complete = false;
    size_t pieces = 0;
    CHECK_RC(mqseal_reassembly_start(&r, rx, sizeof rx, len), MQSEAL_OK, style);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        /* The stack's own buffer, reused for each piece (not the reassembly buffer). */
        uint8_t chunk[64];
        memcpy(chunk, sealed + off, n);
        CHECK_RC(mqseal_reassembly_add(&r, off, chunk, n, &complete), MQSEAL_OK, style);
        pieces++;
        CHECK(complete == (off + n == len), "%s: complete only after the last piece", style);
    }
    CHECK(pieces > 1 && r.filled == len, "%s: %zu pieces", style, pieces);
    mqseal_delivery delivery = {v->retain, false, false, 0};
    mqseal_opened info;
    uint8_t out[1024];
    CHECK_RC(mqseal_open(opener, v->topic, r.buf, r.total_len, &delivery, out, sizeof out, &info),
             MQSEAL_OK, style);
    CHECK(info.payload_len == payload_len && memcmp(out, payload, payload_len) == 0,
          "%s: payload of the reassembled message", style);

    /* A piece out of order abandons the message; a message larger than the buffer is refused. */
    CHECK_RC(mqseal_reassembly_start(&r, rx, sizeof rx, len), MQSEAL_OK, style);
    CHECK_RC(mqseal_reassembly_add(&r, piece, sealed + piece, 1, &complete),
             MQSEAL_ERR_INVALID_ARGUMENT, "a gap");
    CHECK_RC(mqseal_reassembly_add(&r, 0, sealed, 1, &complete), MQSEAL_ERR_INVALID_ARGUMENT,
             "abandoned after a gap");
    CHECK_RC(mqseal_reassembly_start(&r, rx, sizeof rx, sizeof rx + 1),
             MQSEAL_ERR_BUFFER_TOO_SMALL, "a message larger than the buffer");
    mqseal_opener_free(opener);
    mqseal_tree_key_free(key);
    free(payload);
    free(sealed);
}

/* ---- randomness and time come from the firmware ---------------------------------------------- */

static unsigned random_calls;
static size_t random_bytes;
static uint8_t random_last[MQSEAL_SALT_LEN]; /* the last 8 bytes handed out */

/* The test's stand-in for a hardware TRNG (QEMU's mps2 has none): xorshift32, NOT SECURE, only
 * here to see what mqseal asks for. A real firmware reads its TRNG or a DRBG seeded from it. */
static int test_rng(void *ctx, uint8_t *buf, size_t len) {
    uint32_t *state = ctx;
    random_calls++;
    random_bytes += len;
    for (size_t i = 0; i < len; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        buf[i] = (uint8_t)*state;
    }
    if (len >= sizeof random_last)
        memcpy(random_last, buf + len - sizeof random_last, sizeof random_last);
    return 0;
}

static int broken_rng(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx, (void)buf, (void)len;
    return -1;
}

/* Whether all `len` bytes at `buf` still hold `fill` (a refused call wrote nothing). */
static bool untouched(const uint8_t *buf, size_t len, uint8_t fill) {
    for (size_t i = 0; i < len; i++)
        if (buf[i] != fill) return false;
    return true;
}

static uint64_t next_seq(const mqseal_sealer *sealer) {
    uint64_t next = 0;
    REQUIRE_OK(mqseal_sealer_next_seq(sealer, &next));
    return next;
}

/* Runs before any other test registers a generator; leaves test_rng registered (a firmware
 * registers its TRNG once at start-up) for the tests after it. */
static void test_randomness(void) {
    mqseal_identity *a = NULL, *b = NULL, *admin = NULL;
    mqseal_tree_key *key = NULL, *got = NULL;
    mqseal_sealer *sealer = NULL;
    uint8_t grant[256];
    size_t grant_len = 0;

    /* No generator registered: a firmware build has no other source. mqseal_sealer_new needs
     * one (its sealers salt every message from it); mqseal_sealer_new_with_random does not. */
    CHECK_RC(mqseal_identity_generate(&a), MQSEAL_ERR_NO_RANDOM_SOURCE, "generate, no source");
    CHECK_RC(mqseal_tree_key_generate("plant/#", 1, &key), MQSEAL_ERR_NO_RANDOM_SOURCE,
             "key generate, no source");
    CHECK(a == NULL && key == NULL, "nothing made without randomness");
    mqseal_identity *fixed = identity_from_hex(ENVELOPES[0].sender_seed);
    CHECK_RC(mqseal_sealer_new(fixed, MQSEAL_PROFILE_SIGNED, 0, &sealer),
             MQSEAL_ERR_NO_RANDOM_SOURCE, "sealer_new, no source");
    CHECK(sealer == NULL, "no sealer made without a random source");
    CHECK(strcmp(mqseal_error_name(MQSEAL_ERR_NO_RANDOM_SOURCE), "no_random_source") == 0 &&
              MQSEAL_ERR_NO_RANDOM_SOURCE == 204,
          "name and value of the code");

    static uint32_t state = 0x2545F491u;
    mqseal_set_random(test_rng, &state);
    REQUIRE_OK(mqseal_identity_generate(&a));
    REQUIRE_OK(mqseal_identity_generate(&b));
    CHECK(random_calls == 2 && random_bytes == 2 * MQSEAL_SEED_LEN, "32 bytes per identity");
    uint8_t pa[64], pb[64], admin_pub[64];
    REQUIRE_OK(mqseal_identity_public(a, pa, sizeof pa));
    REQUIRE_OK(mqseal_identity_public(b, pb, sizeof pb));
    CHECK(memcmp(pa, pb, sizeof pa) != 0, "two generated identities differ");
    REQUIRE_OK(mqseal_tree_key_generate("plant/#", 1, &key));
    REQUIRE_OK(mqseal_identity_generate(&admin));
    REQUIRE_OK(mqseal_identity_public(admin, admin_pub, sizeof admin_pub));
    size_t before = random_bytes;
    CHECK_RC(mqseal_grant_issue(admin, pb, sizeof pb, key, grant, sizeof grant, &grant_len),
             MQSEAL_OK, "grant_issue with the firmware's generator");
    CHECK(random_bytes - before == MQSEAL_GRANT_IKM_LEN, "grant issuing draws 32 bytes");
    CHECK_RC(mqseal_grant_accept(grant, grant_len, b, admin_pub, 1, &got), MQSEAL_OK,
             "the recipient accepts the issued grant");
    CHECK_RC(mqseal_grant_accept(grant, grant_len, b, admin_pub, 1, NULL),
             MQSEAL_ERR_NULL_ARGUMENT, "NULL out");

    /* With the generator registered, mqseal_sealer_new works; making it draws nothing, each
     * seal draws one 8-byte salt: the one in the message's header. */
    mqseal_opener *opener = NULL;
    mqseal_opened info;
    uint8_t msg[MQSEAL_SEALED_BUFFER_LEN(4)], out[sizeof msg];
    size_t len = 0;
    mqseal_header header;
    before = random_bytes;
    CHECK_RC(mqseal_sealer_new(a, MQSEAL_PROFILE_SIGNED, 100, &sealer), MQSEAL_OK,
             "sealer_new with the registered generator");
    CHECK(sealer != NULL && random_bytes == before, "making the sealer drew randomness");
    REQUIRE_OK(mqseal_sealer_add_key(sealer, key));
    REQUIRE_OK(mqseal_opener_new(NULL, &opener));
    REQUIRE_OK(mqseal_opener_trust_sender(opener, pa, sizeof pa));
    REQUIRE_OK(mqseal_opener_add_key(opener, got));
    CHECK_RC(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.5", 4, NULL, msg, sizeof msg,
                         &len),
             MQSEAL_OK, "seal with the registered generator");
    REQUIRE_OK(mqseal_inspect(msg, len, &header));
    CHECK(random_bytes - before == MQSEAL_SALT_LEN &&
              memcmp(header.salt, random_last, MQSEAL_SALT_LEN) == 0 && header.seq == 100,
          "the salt is the generator's 8 bytes (%u drawn), seq %lu",
          (unsigned)(random_bytes - before), (unsigned long)header.seq);
    /* NULL options in a firmware build: not retained, no timestamp (there is no clock). */
    CHECK(!header.has_timestamp && !header.retain, "NULL options: no timestamp, not retained");
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, NULL, out, sizeof out, &info), MQSEAL_OK,
             "open a message salted by the registered generator");
    CHECK(info.seq == 100 && info.payload_len == 4 && memcmp(out, "21.5", 4) == 0, "opened");

    /* Two sealers of one identity at the same sequence number (a restored backup): the same
     * payload with the same options seals to different messages (different salts, so a
     * different message key: different ciphertext and tag). Both are authentic; one receiver
     * takes the first and refuses the second as a replay. */
    mqseal_sealer *twin1 = NULL, *twin2 = NULL;
    mqseal_opener *receiver = NULL, *other = NULL;
    REQUIRE_OK(mqseal_sealer_new(a, MQSEAL_PROFILE_SIGNED, 500, &twin1));
    REQUIRE_OK(mqseal_sealer_new(a, MQSEAL_PROFILE_SIGNED, 500, &twin2));
    REQUIRE_OK(mqseal_sealer_add_key(twin1, key));
    REQUIRE_OK(mqseal_sealer_add_key(twin2, key));
    REQUIRE_OK(mqseal_opener_new(NULL, &receiver));
    REQUIRE_OK(mqseal_opener_new(NULL, &other));
    REQUIRE_OK(mqseal_opener_trust_sender(receiver, pa, sizeof pa));
    REQUIRE_OK(mqseal_opener_trust_sender(other, pa, sizeof pa));
    REQUIRE_OK(mqseal_opener_add_key(receiver, got));
    REQUIRE_OK(mqseal_opener_add_key(other, got));
    mqseal_seal_options at = {false, true, 1700000000u};
    uint8_t m1[MQSEAL_SEALED_BUFFER_LEN(4)], m2[sizeof m1];
    size_t l1 = 0, l2 = 0;
    REQUIRE_OK(mqseal_seal(twin1, "plant/2", (const uint8_t *)"same", 4, &at, m1, sizeof m1, &l1));
    REQUIRE_OK(mqseal_seal(twin2, "plant/2", (const uint8_t *)"same", 4, &at, m2, sizeof m2, &l2));
    mqseal_header h1, h2;
    REQUIRE_OK(mqseal_inspect(m1, l1, &h1));
    REQUIRE_OK(mqseal_inspect(m2, l2, &h2));
    CHECK(l1 == l2 && h1.seq == 500 && h2.seq == 500 &&
              memcmp(h1.key_id, h2.key_id, MQSEAL_KEY_ID_LEN) == 0,
          "same length, sequence number and key id");
    CHECK(memcmp(h1.salt, h2.salt, MQSEAL_SALT_LEN) != 0, "two sealers drew the same salt");
    /* The ciphertext and tag are the 4 + 16 bytes before the 64-byte signature. */
    size_t body = l1 - 64 - 16 - 4;
    CHECK(memcmp(m1, m2, l1) != 0 && memcmp(m1 + body, m2 + body, 4 + 16) != 0,
          "same payload, same number: different ciphertext and tag");
    CHECK_RC(mqseal_open(receiver, "plant/2", m1, l1, NULL, out, sizeof out, &info), MQSEAL_OK,
             "the first of the pair");
    CHECK_RC(mqseal_open(receiver, "plant/2", m2, l2, NULL, out, sizeof out, &info),
             MQSEAL_ERR_REPLAY, "the second of the pair: its number was used");
    CHECK_RC(mqseal_open(other, "plant/2", m2, l2, NULL, out, sizeof out, &info), MQSEAL_OK,
             "the second alone opens");
    CHECK(info.payload_len == 4 && memcmp(out, "same", 4) == 0, "its payload");
    mqseal_opener_free(other);
    mqseal_opener_free(receiver);
    mqseal_sealer_free(twin2);
    mqseal_sealer_free(twin1);

    /* A failing generator: the calls that need randomness fail with MQSEAL_ERR_RANDOMNESS; a
     * sealer of mqseal_sealer_new writes nothing and spends no number; a sealer with its own
     * callback is not affected. */
    mqseal_identity *c = NULL;
    static uint32_t own_state = 0x9E3779B9u;
    mqseal_sealer *own = NULL;
    REQUIRE_OK(mqseal_sealer_new_with_random(a, MQSEAL_PROFILE_SIGNED, 900, test_rng, &own_state,
                                             &own));
    REQUIRE_OK(mqseal_sealer_add_key(own, key));
    mqseal_set_random(broken_rng, NULL);
    CHECK_RC(mqseal_identity_generate(&c), MQSEAL_ERR_RANDOMNESS, "a failing generator");
    CHECK_RC(mqseal_grant_issue(admin, pb, sizeof pb, key, grant, sizeof grant, &grant_len),
             MQSEAL_ERR_RANDOMNESS, "grant with a failing generator");
    memset(msg, 0xAB, sizeof msg);
    len = 777;
    CHECK_RC(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.6", 4, NULL, msg, sizeof msg,
                         &len),
             MQSEAL_ERR_RANDOMNESS, "seal with a failing registered generator");
    CHECK(len == 777 && untouched(msg, sizeof msg, 0xAB) && next_seq(sealer) == 101,
          "a failed draw wrote output or spent a number");
    CHECK_RC(mqseal_seal(own, "plant/1", (const uint8_t *)"21.7", 4, NULL, msg, sizeof msg, &len),
             MQSEAL_OK, "a sealer with its own generator ignores the registered one");
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, NULL, out, sizeof out, &info), MQSEAL_OK,
             "open the own-generator message");
    CHECK(info.seq == 900, "its number");

    /* Unregistered: no source again, for new sealers and for the existing one's next seal. */
    mqseal_set_random(NULL, NULL);
    CHECK_RC(mqseal_identity_generate(&c), MQSEAL_ERR_NO_RANDOM_SOURCE, "unregistered again");
    mqseal_sealer *none = NULL;
    CHECK_RC(mqseal_sealer_new(a, MQSEAL_PROFILE_SIGNED, 0, &none), MQSEAL_ERR_NO_RANDOM_SOURCE,
             "sealer_new, unregistered again");
    CHECK_RC(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.6", 4, NULL, msg, sizeof msg,
                         &len),
             MQSEAL_ERR_RANDOMNESS, "seal, generator unregistered");
    CHECK(next_seq(sealer) == 101, "no number spent without a generator");

    /* Registered again (for the rest of the run): the sealer resumes at the unspent number. */
    mqseal_set_random(test_rng, &state);
    CHECK_RC(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.6", 4, NULL, msg, sizeof msg,
                         &len),
             MQSEAL_OK, "seal, generator registered again");
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, NULL, out, sizeof out, &info), MQSEAL_OK,
             "open after the generator came back");
    CHECK(info.seq == 101 && info.payload_len == 4 && memcmp(out, "21.6", 4) == 0,
          "the number the failures did not spend");
    mqseal_opener_free(opener);
    opener = NULL;

    /* Time: a firmware has no clock mqseal could read. A maximum age needs a timestamp in the
     * message (NULL options give none) and the caller's now. */
    mqseal_open_policy policy = mqseal_open_policy_default();
    policy.has_max_age = true;
    policy.max_age = 60;
    REQUIRE_OK(mqseal_opener_new(&policy, &opener));
    REQUIRE_OK(mqseal_opener_trust_sender(opener, pa, sizeof pa));
    REQUIRE_OK(mqseal_opener_add_key(opener, got));
    mqseal_delivery now = {false, false, true, 1700000030u};
    REQUIRE_OK(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.4", 4, NULL, msg, sizeof msg,
                           &len));
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, &now, out, sizeof out, &info),
             MQSEAL_ERR_MISSING_TIMESTAMP, "NULL options: no timestamp for a maximum age");
    REQUIRE_OK(mqseal_seal(sealer, "plant/1", (const uint8_t *)"21.5", 4, &at, msg, sizeof msg,
                           &len));
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, NULL, out, sizeof out, &info),
             MQSEAL_ERR_EXPIRED, "no time passed in: a maximum age cannot be met");
    mqseal_delivery late = {false, false, true, 1700000061u};
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, &late, out, sizeof out, &info),
             MQSEAL_ERR_EXPIRED, "61 s later");
    CHECK_RC(mqseal_open(opener, "plant/1", msg, len, &now, out, sizeof out, &info), MQSEAL_OK,
             "30 s later");

    mqseal_opener_free(opener);
    mqseal_sealer_free(own);
    mqseal_sealer_free(sealer);
    mqseal_tree_key_free(got);
    mqseal_tree_key_free(key);
    mqseal_identity_free(fixed);
    mqseal_identity_free(admin);
    mqseal_identity_free(b);
    mqseal_identity_free(a);
}

/* ---- panics abort through the firmware's hook -------------------------------------------- */

/* malloc is wrapped (-Wl,--wrap=malloc) so that the last test can make it fail. */
void *__real_malloc(size_t);
static bool fail_malloc, expect_panic;

void *__wrap_malloc(size_t n) { return fail_malloc ? NULL : __real_malloc(n); }

/* The panic hook. mqseal has no known panic to trigger from the API, but an allocation failure
 * is one (Rust's no_std allocation-error handler panics): the last test makes malloc fail (or,
 * with the arena, fills it) and expects to end here, with the message, never to return into the
 * call. */
static void on_panic(const char *msg, size_t len) {
    fail_malloc = false;
    bool expected = expect_panic && len > 0 && strstr(msg, "memory allocation") != NULL;
    if (expected) {
        passed++;
        printf("the panic hook got: %.*s\n", (int)len, msg);
    } else {
        failed++;
        printf("FAIL: unexpected mqseal panic: %.*s\n", (int)len, msg);
    }
    printf("%u passed, %u failed\n", passed, failed);
    fw_exit(failed ? 1 : 0);
}

#ifdef MQSEAL_ARENA
/* ---- the arena heap (library built with the feature `arena`) ------------------------------ */

/* mqseal's heap: handed over once at start-up. The test's own buffers still come from newlib's
 * malloc, a separate heap. */
static uint8_t arena[32 * 1024] __attribute__((aligned(8)));
static unsigned cs_entered, cs_depth, cs_max_depth;

/* The firmware's critical section: interrupts masked (PRIMASK), nesting through the saved state. */
static uint32_t cs_enter(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask) : : "memory");
    cs_entered++;
    if (++cs_depth > cs_max_depth) cs_max_depth = cs_depth;
    return primask;
}

static void cs_exit(uint32_t state) {
    cs_depth--;
    __asm__ volatile("msr primask, %0" : : "r"(state) : "memory");
}

static void test_arena_start(void) {
    size_t used = 1, peak = 1;
    CHECK_RC(mqseal_heap_usage(&used, &peak), MQSEAL_OK, "usage before heap_init");
    CHECK(used == 0 && peak == 0, "before heap_init: used %lu, peak %lu", (unsigned long)used,
          (unsigned long)peak);
    CHECK_RC(mqseal_heap_usage(NULL, &peak), MQSEAL_ERR_NULL_ARGUMENT, "usage, NULL");
    CHECK_RC(mqseal_set_critical_section(cs_enter, NULL), MQSEAL_ERR_NULL_ARGUMENT,
             "critical section without exit");
    CHECK_RC(mqseal_set_critical_section(cs_enter, cs_exit), MQSEAL_OK, "critical section");
    CHECK_RC(mqseal_heap_init(NULL, sizeof arena), MQSEAL_ERR_NULL_ARGUMENT, "heap_init NULL");
    CHECK_RC(mqseal_heap_init(arena, MQSEAL_HEAP_MIN_LEN - 1), MQSEAL_ERR_INVALID_ARGUMENT,
             "heap_init too small");
    REQUIRE_OK(mqseal_heap_init(arena, sizeof arena));
    CHECK_RC(mqseal_heap_init(arena, sizeof arena), MQSEAL_ERR_ALREADY_INITIALIZED,
             "heap_init again");
    CHECK_RC(mqseal_set_critical_section(NULL, NULL), MQSEAL_ERR_ALREADY_INITIALIZED,
             "critical section after heap_init");
    CHECK(strcmp(mqseal_error_name(MQSEAL_ERR_ALREADY_INITIALIZED), "already_initialized") == 0 &&
              MQSEAL_ERR_ALREADY_INITIALIZED == 206,
          "code 206");
    /* An identity lives in the arena, through the critical section, and gives it back. */
    uint8_t seed[MQSEAL_SEED_LEN] = {7};
    mqseal_identity *id = NULL;
    unsigned entered = cs_entered;
    REQUIRE_OK(mqseal_identity_from_seed(seed, sizeof seed, &id));
    CHECK_RC(mqseal_heap_usage(&used, &peak), MQSEAL_OK, "usage");
    CHECK(used > 0 && used <= sizeof arena && peak >= used, "with an identity: used %lu, peak %lu",
          (unsigned long)used, (unsigned long)peak);
    CHECK(cs_entered > entered && cs_depth == 0, "critical sections: %u entered, depth %u",
          cs_entered - entered, cs_depth);
    mqseal_identity_free(id);
    CHECK_RC(mqseal_heap_usage(&used, &peak), MQSEAL_OK, "usage");
    CHECK(used == 0 && peak > 0, "freed: used %lu, peak %lu", (unsigned long)used,
          (unsigned long)peak);
}

static void test_arena_end(void) {
    size_t used = 1, peak = 0;
    CHECK_RC(mqseal_heap_usage(&used, &peak), MQSEAL_OK, "usage at the end");
    CHECK(used == 0, "every handle freed, %lu B still in use", (unsigned long)used);
    CHECK(cs_depth == 0 && cs_max_depth >= 1, "critical sections balanced (depth %u, max %u)",
          cs_depth, cs_max_depth);
    printf("arena: %lu B, peak %lu B over the run, %u critical sections\n",
           (unsigned long)sizeof arena, (unsigned long)peak, cs_entered);
}

/* Last: the arena is filled with identities until an allocation fails, which panics into the
 * hook (never returns). */
static void test_panic_hook_last(void) {
    uint8_t seed[MQSEAL_SEED_LEN] = {1};
    expect_panic = true;
    for (unsigned i = 0; i < sizeof arena; i++) {
        mqseal_identity *id = NULL;
        seed[1] = (uint8_t)i;
        if (mqseal_identity_from_seed(seed, sizeof seed, &id) != MQSEAL_OK) break;
    }
    CHECK(false, "filling the arena never failed an allocation");
}
#else
/* The malloc build has no arena: those functions say so. */
static void test_arena_start(void) {
    static uint8_t buf[MQSEAL_HEAP_MIN_LEN];
    size_t used = 0, peak = 0;
    CHECK_RC(mqseal_heap_init(buf, sizeof buf), MQSEAL_ERR_UNSUPPORTED, "heap_init over malloc");
    CHECK_RC(mqseal_heap_usage(&used, &peak), MQSEAL_ERR_UNSUPPORTED, "heap_usage over malloc");
    CHECK_RC(mqseal_set_critical_section(NULL, NULL), MQSEAL_ERR_UNSUPPORTED,
             "critical section over malloc");
    CHECK(strcmp(mqseal_error_name(MQSEAL_ERR_UNSUPPORTED), "unsupported") == 0 &&
              MQSEAL_ERR_UNSUPPORTED == 205,
          "code 205");
}

static void test_arena_end(void) {}

static void test_panic_hook_last(void) {
    uint8_t seed[MQSEAL_SEED_LEN] = {1};
    mqseal_identity *id = NULL;
    expect_panic = true;
    fail_malloc = true;
    mqseal_result rc = mqseal_identity_from_seed(seed, sizeof seed, &id);
    fail_malloc = false;
    CHECK(false, "an allocation failure returned %s instead of panicking into the hook",
          mqseal_error_name(rc));
}
#endif

int main(void) {
    mqseal_set_panic_hook(on_panic);
    /* With the arena: handed over first (the critical section before it). */
    test_arena_start();
    printf("mqseal %s firmware test (Cortex-M4F, QEMU mps2-an386): %u envelopes, %u negative "
           "envelopes, %u grants, %u negative grants\n",
           mqseal_version(), (unsigned)N_ENVELOPES, (unsigned)N_NEGATIVES, (unsigned)N_GRANTS,
           (unsigned)N_GRANTS_NEGATIVE);
    test_envelopes();
    test_envelopes_negative();
    test_grants();
    /* First to register a generator (the tests above need none); leaves it registered. */
    test_randomness();
    test_replay_window_persistence();
    test_key_validity_without_clock();
    open_in_pieces(7, "lwIP-style pieces of 7 bytes");
    open_in_pieces(64, "esp-mqtt-style pieces of 64 bytes");
    test_arena_end();
    /* Last: ends the run through the panic hook, which prints the totals and exits. */
    test_panic_hook_last();
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
