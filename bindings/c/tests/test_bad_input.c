/*
 * Bad input to the C API (include/mqseal.h): invalid topics (wildcards, empty, over 65535
 * bytes, not UTF-8), empty and oversized payloads (above MQSEAL_MAX_SEALED_LEN, backed by a
 * reserved but never touched mapping), and garbage bytes for every parser (messages, grants,
 * public identities, replay windows, headers).
 *
 * Checked every time: the documented result code, out-parameters untouched on error (sentinel
 * values), no plaintext left in the output buffer, no sequence number spent by a refused seal,
 * no crash (scripts/checks/60-c.sh also runs this under ASan + UBSan and valgrind). A topic with
 * an embedded NUL cannot be passed: C strings end at the NUL, so "a\0b" is the topic "a".
 *
 * Prints every failure, then "N passed, N failed"; exits 1 on any failure.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mqseal.h"

static unsigned passed, failed;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (cond) {                                                                               \
            passed++;                                                                             \
        } else {                                                                                  \
            failed++;                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

#define CHECK_RC(expr, want, ctx)                                                                 \
    do {                                                                                          \
        mqseal_result rc_ = (expr);                                                               \
        CHECK(rc_ == (mqseal_result)(want), "%s: got %s (%u), want %s", (ctx),                    \
              mqseal_error_name(rc_), (unsigned)rc_, mqseal_error_name(want));                    \
    } while (0)

#define CHECK_FAILS(expr, ctx)                                                                    \
    do {                                                                                          \
        mqseal_result rc_ = (expr);                                                               \
        CHECK(rc_ != MQSEAL_OK && rc_ != MQSEAL_ERR_PANIC, "%s: got %s", (ctx),                   \
              mqseal_error_name(rc_));                                                            \
    } while (0)

#define REQUIRE_OK(expr)                                                                          \
    do {                                                                                          \
        mqseal_result rc_ = (expr);                                                               \
        if (rc_ != MQSEAL_OK) {                                                                   \
            fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                   \
                    mqseal_error_name(rc_));                                                      \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

#define SENTINEL_LEN ((size_t)0x5EA1ED)
/* A handle value no function may write over on error (never dereferenced). */
static int sentinel_marker_storage;
#define SENTINEL_KEY ((mqseal_tree_key *)&sentinel_marker_storage)
#define FILL 0xAB

static const char PLAINTEXT[] = "SECRET-PAYLOAD";

/* Deterministic bytes (xorshift32), so a failure can be reproduced. */
static uint32_t rng_state = 0x12345678u;
static uint8_t rng_byte(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 24);
}

static int all_bytes(const uint8_t *buf, size_t len, uint8_t value) {
    for (size_t i = 0; i < len; i++)
        if (buf[i] != value) return 0;
    return 1;
}

/* After a failed open: every byte is the fill pattern or zero (no plaintext left behind). */
static int no_plaintext(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (buf[i] != FILL && buf[i] != 0) return 0;
    return 1;
}

static int same_opened(const mqseal_opened *a, const mqseal_opened *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static mqseal_identity *me;
static mqseal_tree_key *root_key;
static mqseal_sealer *sealer;
static mqseal_opener *opener;
static uint8_t me_pub[MQSEAL_PUBLIC_IDENTITY_LEN];
static uint8_t me_fp[MQSEAL_FINGERPRINT_LEN];

static void setup(void) {
    uint8_t seed[MQSEAL_SEED_LEN], secret[MQSEAL_KEY_LEN];
    memset(seed, 0x42, sizeof seed);
    memset(secret, 0x24, sizeof secret);
    REQUIRE_OK(mqseal_identity_from_seed(seed, sizeof seed, &me));
    REQUIRE_OK(mqseal_identity_public(me, me_pub, sizeof me_pub));
    REQUIRE_OK(mqseal_identity_fingerprint(me, me_fp, sizeof me_fp));
    REQUIRE_OK(mqseal_tree_key_new("#", 1, secret, sizeof secret, &root_key));
    REQUIRE_OK(mqseal_sealer_new(me, MQSEAL_PROFILE_SIGNED, 0, &sealer));
    REQUIRE_OK(mqseal_sealer_add_key(sealer, root_key));
    REQUIRE_OK(mqseal_opener_new(NULL, &opener));
    REQUIRE_OK(mqseal_opener_trust_sender(opener, me_pub, sizeof me_pub));
    REQUIRE_OK(mqseal_opener_add_key(opener, root_key));
}

static void teardown(void) {
    mqseal_opener_free(opener);
    mqseal_sealer_free(sealer);
    mqseal_tree_key_free(root_key);
    mqseal_identity_free(me);
}

static uint64_t next_seq(void) {
    uint64_t seq = 0;
    REQUIRE_OK(mqseal_sealer_next_seq(sealer, &seq));
    return seq;
}

/* Seals PLAINTEXT on `topic` into `out` (at least 256 bytes); returns the length. */
static size_t seal_good(const char *topic, uint8_t *out) {
    size_t len = 0;
    REQUIRE_OK(mqseal_seal(sealer, topic, (const uint8_t *)PLAINTEXT, strlen(PLAINTEXT), NULL,
                           out, 256, &len));
    return len;
}

/* ---- topics -------------------------------------------------------------------------------- */

static void test_bad_topics(void) {
    static uint8_t good[256];
    size_t good_len = seal_good("a/b", good);

    char *too_long = malloc(65537);
    char *longest = malloc(65536);
    if (!too_long || !longest) abort();
    memset(too_long, 'x', 65536);
    too_long[65536] = 0;
    memset(longest, 'x', 65535);
    longest[65535] = 0;
    const char *bad[] = {
        "",              /* empty */
        "a/+",           /* wildcards */
        "a/#",
        "#",
        "+",
        "a/b+c",
        too_long,        /* 65536 bytes */
        "a/\xff",        /* not UTF-8 */
        "a/\xc3",        /* truncated sequence */
        "\xc0\xaf",      /* overlong encoding of '/' */
        "\xed\xa0\x80",  /* an encoded UTF-16 surrogate */
        "a/\xf8\x88\x80\x80\x80", /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t before = next_seq();
        uint8_t out[256];
        size_t len = SENTINEL_LEN;
        memset(out, FILL, sizeof out);
        CHECK_RC(mqseal_seal(sealer, bad[i], (const uint8_t *)"x", 1, NULL, out, sizeof out,
                             &len),
                 MQSEAL_ERR_INVALID_TOPIC, "seal on bad topic");
        CHECK(len == SENTINEL_LEN, "bad topic %zu: out_len written", i);
        CHECK(all_bytes(out, sizeof out, FILL), "bad topic %zu: output written", i);
        CHECK(next_seq() == before, "bad topic %zu: a sequence number was spent", i);
        len = SENTINEL_LEN;
        CHECK_RC(mqseal_sealer_sealed_len(sealer, bad[i], 1, NULL, &len),
                 MQSEAL_ERR_INVALID_TOPIC, "sealed_len on bad topic");
        CHECK(len == SENTINEL_LEN, "bad topic %zu: sealed_len written", i);

        mqseal_opened info, sentinel;
        memset(&info, 0x5A, sizeof info);
        memcpy(&sentinel, &info, sizeof info);
        memset(out, FILL, sizeof out);
        CHECK_RC(mqseal_open(opener, bad[i], good, good_len, NULL, out, sizeof out, &info),
                 MQSEAL_ERR_INVALID_TOPIC, "open on bad topic");
        CHECK(same_opened(&info, &sentinel), "bad topic %zu: info written", i);
        CHECK(no_plaintext(out, sizeof out), "bad topic %zu: plaintext left", i);
        if (i >= 7) /* not UTF-8: documented as never covered */
            CHECK(!mqseal_tree_key_covers(root_key, bad[i]), "bad topic %zu covered", i);
    }
    /* The longest valid topic works. */
    static uint8_t sealed[65535 + 256];
    size_t len = 0;
    CHECK_RC(mqseal_seal(sealer, longest, (const uint8_t *)"x", 1, NULL, sealed, sizeof sealed,
                         &len),
             MQSEAL_OK, "seal on the longest topic");
    mqseal_opened info;
    uint8_t plain[8];
    CHECK_RC(mqseal_open(opener, longest, sealed, len, NULL, plain, sizeof plain, &info),
             MQSEAL_OK, "open on the longest topic");
    /* Filters: wildcards in the wrong place, not UTF-8, too long. */
    const char *bad_filters[] = {"", "a/+/b", "a/#/b", "a/b#", "a/\xff/#", too_long};
    uint8_t secret[MQSEAL_KEY_LEN] = {9};
    for (size_t i = 0; i < sizeof bad_filters / sizeof *bad_filters; i++) {
        mqseal_tree_key *k = SENTINEL_KEY;
        CHECK_FAILS(mqseal_tree_key_new(bad_filters[i], 1, secret, sizeof secret, &k),
                    "tree_key_new on a bad filter");
        CHECK(k == SENTINEL_KEY, "filter %zu: key written", i);
        CHECK_FAILS(mqseal_tree_key_derive(root_key, bad_filters[i], &k), "derive bad filter");
        CHECK(k == SENTINEL_KEY, "filter %zu: derived", i);
    }
    /* The good message still opens: the failures recorded nothing. */
    CHECK_RC(mqseal_open(opener, "a/b", good, good_len, NULL, plain, sizeof plain, &info),
             MQSEAL_ERR_BUFFER_TOO_SMALL, "short buffer");
    uint8_t big[256];
    CHECK_RC(mqseal_open(opener, "a/b", good, good_len, NULL, big, sizeof big, &info), MQSEAL_OK,
             "the good message after the failures");
    free(too_long);
    free(longest);
}

/* ---- payloads ------------------------------------------------------------------------------ */

static void test_payload_sizes(void) {
    /* Empty payloads are legitimate, NULL allowed with length 0. */
    uint8_t sealed[256], plain[16];
    size_t len = 0;
    mqseal_opened info;
    CHECK_RC(mqseal_seal(sealer, "a/empty", NULL, 0, NULL, sealed, sizeof sealed, &len), MQSEAL_OK,
             "seal an empty payload");
    CHECK_RC(mqseal_open(opener, "a/empty", sealed, len, NULL, plain, sizeof plain, &info),
             MQSEAL_OK, "open an empty payload");
    CHECK(info.payload_len == 0, "empty payload opened as %zu bytes", info.payload_len);

    /* Above the MQTT payload limit. The bytes come from a mapping that is reserved, never
     * touched (MAP_NORESERVE): mqseal must refuse on the length alone. */
    size_t map_len = (size_t)MQSEAL_MAX_SEALED_LEN + 1;
    uint8_t *huge = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    CHECK(huge != MAP_FAILED, "mmap of %zu bytes failed", map_len);
    if (huge == MAP_FAILED) return;
    uint64_t before = next_seq();
    uint8_t out[64];
    memset(out, FILL, sizeof out);
    len = SENTINEL_LEN;
    CHECK_RC(mqseal_seal(sealer, "a/b", huge, MQSEAL_MAX_SEALED_LEN, NULL, out, sizeof out, &len),
             MQSEAL_ERR_TOO_LARGE, "seal above the limit");
    CHECK(len == SENTINEL_LEN && all_bytes(out, sizeof out, FILL), "output written");
    CHECK(next_seq() == before, "a refused seal spent a sequence number");
    len = SENTINEL_LEN;
    CHECK_RC(mqseal_sealer_sealed_len(sealer, "a/b", MQSEAL_MAX_SEALED_LEN, NULL, &len),
             MQSEAL_ERR_TOO_LARGE, "sealed_len above the limit");
    CHECK_RC(mqseal_sealer_sealed_len(sealer, "a/b", SIZE_MAX, NULL, &len), MQSEAL_ERR_TOO_LARGE,
             "sealed_len of SIZE_MAX (no overflow)");
    CHECK(len == SENTINEL_LEN, "sealed_len written on error");
    CHECK(mqseal_sealed_max_len(MQSEAL_PROFILE_GROUP_MAC, SIZE_MAX - 10) == 0, "max_len overflow");

    mqseal_opened sentinel;
    memset(&info, 0x5A, sizeof info);
    memcpy(&sentinel, &info, sizeof info);
    CHECK_RC(mqseal_open(opener, "a/b", huge, map_len, NULL, out, sizeof out, &info),
             MQSEAL_ERR_TOO_LARGE, "open above the limit");
    CHECK(same_opened(&info, &sentinel), "info written");
    mqseal_header header, header_sentinel;
    memset(&header, 0x5A, sizeof header);
    memcpy(&header_sentinel, &header, sizeof header);
    CHECK_RC(mqseal_inspect(huge, map_len, &header), MQSEAL_ERR_TOO_LARGE, "inspect above the limit");
    CHECK(memcmp(&header, &header_sentinel, sizeof header) == 0, "header written");
    munmap(huge, map_len);

    /* A buffer one byte short: refused, nothing written, no number spent. */
    size_t exact = 0;
    REQUIRE_OK(mqseal_sealer_sealed_len(sealer, "a/b", 5, NULL, &exact));
    before = next_seq();
    memset(sealed, FILL, sizeof sealed);
    len = SENTINEL_LEN;
    CHECK_RC(mqseal_seal(sealer, "a/b", (const uint8_t *)"12345", 5, NULL, sealed, exact - 1, &len),
             MQSEAL_ERR_BUFFER_TOO_SMALL, "one byte short");
    CHECK(len == SENTINEL_LEN && all_bytes(sealed, sizeof sealed, FILL), "written when short");
    CHECK(next_seq() == before, "a short buffer spent a sequence number");
}

/* ---- garbage bytes ------------------------------------------------------------------------- */

/* Opens `msg`, which must fail, and checks that nothing leaked into the out-parameters. */
static void open_must_fail(const uint8_t *msg, size_t len, const char *ctx, size_t n) {
    static uint8_t out[1024];
    mqseal_opened info, sentinel;
    memset(&info, 0x5A, sizeof info);
    memcpy(&sentinel, &info, sizeof info);
    memset(out, FILL, sizeof out);
    mqseal_delivery delivery = {false, false, false, 0};
    for (int pass = 0; pass < 2; pass++) {
        delivery.duplicate = pass == 1;
        mqseal_result rc = mqseal_open(opener, "a/b", msg, len, &delivery, out, sizeof out, &info);
        CHECK(rc != MQSEAL_OK && rc != MQSEAL_ERR_PANIC, "%s %zu: %s", ctx, n, mqseal_error_name(rc));
        CHECK(same_opened(&info, &sentinel), "%s %zu: info written", ctx, n);
        CHECK(no_plaintext(out, sizeof out), "%s %zu: plaintext left in the buffer", ctx, n);
    }
    mqseal_header header, header_sentinel;
    memset(&header, 0x5A, sizeof header);
    memcpy(&header_sentinel, &header, sizeof header);
    if (mqseal_inspect(msg, len, &header) != MQSEAL_OK)
        CHECK(memcmp(&header, &header_sentinel, sizeof header) == 0, "%s %zu: header written", ctx,
              n);
}

static void test_garbage_messages(void) {
    static uint8_t good[256], bad[256], random[600];
    size_t good_len = seal_good("a/b", good);
    for (size_t n = 0; n < good_len; n++) open_must_fail(good, n, "prefix", n);
    for (size_t i = 0; i < good_len; i++) {
        memcpy(bad, good, good_len);
        bad[i] ^= 0x5A;
        open_must_fail(bad, good_len, "flipped byte", i);
    }
    memcpy(bad, good, good_len);
    bad[good_len] = 0;
    open_must_fail(bad, good_len + 1, "one byte appended", 0);
    /* v2 header fields (flags, epoch, sender id, key id, salt, ...): a v1 version, a key id no held
     * key has, a changed salt each give their own code. */
    static const struct { size_t at; uint8_t mask; mqseal_result want; const char *what; } v2[] = {
        {0, 0x60, MQSEAL_ERR_UNSUPPORTED_VERSION, "version bits 010 -> 001 (v1)"},
        {6, 0x01, MQSEAL_ERR_KEY_NOT_FOUND, "key id, first byte"},
        {9, 0x80, MQSEAL_ERR_KEY_NOT_FOUND, "key id, last byte"},
        {10, 0x01, MQSEAL_ERR_BAD_SIGNATURE, "salt, first byte"},
        {17, 0x80, MQSEAL_ERR_BAD_SIGNATURE, "salt, last byte"},
    };
    for (size_t i = 0; i < sizeof v2 / sizeof *v2; i++) {
        static uint8_t out[256];
        mqseal_opened info;
        memcpy(bad, good, good_len);
        bad[v2[i].at] ^= v2[i].mask;
        memset(out, FILL, sizeof out);
        CHECK_RC(mqseal_open(opener, "a/b", bad, good_len, NULL, out, sizeof out, &info),
                 v2[i].want, v2[i].what);
        CHECK(no_plaintext(out, sizeof out), "%s: plaintext left", v2[i].what);
    }
    for (size_t n = 0; n <= sizeof random; n += 7) {
        for (size_t i = 0; i < n; i++) random[i] = rng_byte();
        open_must_fail(random, n, "random bytes", n);
    }
    const char *texts[] = {"{\"temp\": 21.5}", "21.5", "\x01", "\x01\x00", "\xff\xff\xff\xff"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        open_must_fail((const uint8_t *)texts[i], strlen(texts[i]), "text", i);
    open_must_fail(NULL, 0, "empty message", 0);
    /* The good message is still accepted once, then refused as a replay. */
    uint8_t out[256];
    mqseal_opened info;
    CHECK_RC(mqseal_open(opener, "a/b", good, good_len, NULL, out, sizeof out, &info), MQSEAL_OK,
             "the good message after the garbage");
    CHECK(info.payload_len == strlen(PLAINTEXT) && memcmp(out, PLAINTEXT, info.payload_len) == 0,
          "payload");
    CHECK_RC(mqseal_open(opener, "a/b", good, good_len, NULL, out, sizeof out, &info),
             MQSEAL_ERR_REPLAY, "a replay");
}

static void test_garbage_grants_and_keys(void) {
    static uint8_t grant[512], bad[512], random[400];
    size_t grant_len = 0;
    REQUIRE_OK(mqseal_grant_issue(me, me_pub, sizeof me_pub, root_key, grant, sizeof grant,
                                  &grant_len));
    uint8_t fp[MQSEAL_FINGERPRINT_LEN];
    for (size_t n = 0; n <= grant_len; n++) {
        int whole = n == grant_len;
        for (int flip = 0; flip < (whole ? 2 : 1); flip++) {
            memcpy(bad, grant, n);
            size_t at = flip ? (n * 7 + 3) % n : 0;
            for (size_t k = 0; flip && k < n; k += 11) bad[(at + k) % n] ^= 0x21;
            if (whole && !flip) continue; /* the intact grant */
            mqseal_tree_key *key = SENTINEL_KEY;
            CHECK_FAILS(mqseal_grant_accept(bad, n, me, me_pub, 1, &key), "damaged grant");
            CHECK(key == SENTINEL_KEY, "damaged grant %zu: key written", n);
            memset(fp, FILL, sizeof fp);
            if (mqseal_grant_recipient(bad, n, fp, sizeof fp) != MQSEAL_OK)
                CHECK(all_bytes(fp, sizeof fp, FILL), "grant_recipient %zu: output written", n);
        }
    }
    for (size_t n = 0; n <= sizeof random; n += 13) {
        for (size_t i = 0; i < n; i++) random[i] = rng_byte();
        mqseal_tree_key *key = SENTINEL_KEY;
        CHECK_FAILS(mqseal_grant_accept(random, n, me, me_pub, 1, &key), "random grant");
        CHECK(key == SENTINEL_KEY, "random grant %zu: key written", n);
        /* Public identities, replay windows, fingerprints from garbage. */
        memset(fp, FILL, sizeof fp);
        mqseal_result rc = mqseal_public_identity_fingerprint(random, n, fp, sizeof fp);
        if (n != MQSEAL_PUBLIC_IDENTITY_LEN)
            CHECK(rc == MQSEAL_ERR_MALFORMED, "public identity of %zu bytes: %s", n,
                  mqseal_error_name(rc));
        if (rc != MQSEAL_OK) CHECK(all_bytes(fp, sizeof fp, FILL), "fingerprint written (%zu)", n);
        rc = mqseal_opener_trust_sender(opener, random, n);
        CHECK(rc != MQSEAL_OK || n == MQSEAL_PUBLIC_IDENTITY_LEN, "trusted %zu garbage bytes", n);
        if (rc == MQSEAL_OK) {
            /* 64 random bytes may be a valid key pair; stop trusting it again. */
            uint8_t junk_fp[MQSEAL_FINGERPRINT_LEN];
            REQUIRE_OK(mqseal_public_identity_fingerprint(random, n, junk_fp, sizeof junk_fp));
            REQUIRE_OK(mqseal_opener_untrust_sender(opener, junk_fp, sizeof junk_fp));
        }
        if (n != MQSEAL_REPLAY_WINDOW_LEN)
            CHECK_RC(mqseal_opener_set_replay_window(opener, me_fp, sizeof me_fp,
                                                     MQSEAL_PROFILE_SIGNED, 1, "a/w", random, n),
                     MQSEAL_ERR_MALFORMED, "replay window from garbage");
    }
    /* A window of the right length but garbage content. */
    uint8_t window[MQSEAL_REPLAY_WINDOW_LEN];
    memset(window, 0xFF, sizeof window);
    CHECK_FAILS(mqseal_opener_set_replay_window(opener, me_fp, sizeof me_fp,
                                                MQSEAL_PROFILE_SIGNED, 1, "a/w", window,
                                                sizeof window),
                "replay window of 0xFF bytes");
    /* Bad topics in the replay-window calls. */
    CHECK_RC(mqseal_opener_replay_window(opener, me_fp, sizeof me_fp, MQSEAL_PROFILE_SIGNED, 1,
                                         "a/\xff", window, sizeof window),
             MQSEAL_ERR_INVALID_TOPIC, "replay_window on a topic that is not UTF-8");
    CHECK_RC(mqseal_opener_replay_window(opener, me_fp, sizeof me_fp, 2, 1, "a/w", window,
                                         sizeof window),
             MQSEAL_ERR_INVALID_ARGUMENT, "replay_window of an unknown profile");
    CHECK_RC(mqseal_opener_set_replay_window(opener, me_fp, sizeof me_fp, 7, 1, "a/w", window,
                                             sizeof window),
             MQSEAL_ERR_INVALID_ARGUMENT, "set_replay_window of an unknown profile");
    /* Unknown result codes are described, never NULL. */
    CHECK(strcmp(mqseal_error_name(UINT32_MAX), "unknown") == 0, "name of an unknown code");
    char text[64];
    size_t n = mqseal_error_text(UINT32_MAX, text, sizeof text);
    CHECK(n > 0 && n < sizeof text && strcmp(text, "unknown error") == 0, "text %s", text);
    CHECK(mqseal_error_text(MQSEAL_ERR_REPLAY, text, 1) > 0 && text[0] == 0, "truncated text");
}

/* ---- outputs sharing memory with inputs -------------------------------------------------- */

/* An output buffer that contains the topic, the length out-parameter or the info struct is
 * refused (MQSEAL_ERR_INVALID_ARGUMENT) before anything is written: Rust may not alias them. */
static void test_overlapping_outputs(void) {
    static _Alignas(16) uint8_t buf[512];
    uint8_t sealed[256];
    size_t len = seal_good("a/ov", sealed);
    uint64_t before = next_seq();
    memcpy(buf, "a/ov", 5); /* the topic lives inside the output buffer */
    size_t out_len = SENTINEL_LEN;
    CHECK_RC(mqseal_seal(sealer, (const char *)buf, (const uint8_t *)"x", 1, NULL, buf,
                         sizeof buf, &out_len),
             MQSEAL_ERR_INVALID_ARGUMENT, "seal: topic inside out");
    size_t *inside = (size_t *)(void *)(buf + 64);
    CHECK_RC(mqseal_seal(sealer, "a/ov", (const uint8_t *)"x", 1, NULL, buf, sizeof buf, inside),
             MQSEAL_ERR_INVALID_ARGUMENT, "seal: out_len inside out");
    CHECK(next_seq() == before, "a refused seal spent a sequence number");
    mqseal_opened info;
    CHECK_RC(mqseal_open(opener, (const char *)buf, sealed, len, NULL, buf, sizeof buf, &info),
             MQSEAL_ERR_INVALID_ARGUMENT, "open: topic inside out");
    mqseal_opened *info_inside = (mqseal_opened *)(void *)(buf + 128);
    CHECK_RC(mqseal_open(opener, "a/ov", sealed, len, NULL, buf, sizeof buf, info_inside),
             MQSEAL_ERR_INVALID_ARGUMENT, "open: info inside out");
    CHECK_RC(mqseal_open(opener, "a/ov", sealed, len, NULL, buf, 64, info_inside), MQSEAL_OK,
             "open: info beside out (not overlapping) is fine");
}

/* ---- bool fields holding other bytes ------------------------------------------------------ */

/* A C program can leave any byte in a struct's bool field (memset, a uint8_t written through a
 * cast). mqseal reads each such field as a byte, nonzero meaning true (reading it as a Rust bool
 * would be undefined behaviour). */
static void test_bool_fields_with_other_bytes(void) {
    uint8_t sealed[256], plain[64];
    mqseal_opened info;
    size_t len = seal_good("a/bools", sealed);
    mqseal_delivery delivery;
    memset(&delivery, 0, sizeof delivery);
    uint8_t two = 2;
    memcpy(&delivery.retained, &two, 1); /* "retained": a non-retained message so delivered */
    CHECK_RC(mqseal_open(opener, "a/bools", sealed, len, &delivery, plain, sizeof plain, &info),
             MQSEAL_ERR_RETAIN_MISMATCH, "retained byte 2 reads as true");
    memset(&delivery, 0, sizeof delivery);
    uint8_t ff = 0xFF;
    memcpy(&delivery.duplicate, &ff, 1);
    CHECK_RC(mqseal_open(opener, "a/bools", sealed, len, &delivery, plain, sizeof plain, &info),
             MQSEAL_OK, "duplicate byte 0xFF: a redelivery, opened once");
    CHECK_RC(mqseal_open(opener, "a/bools", sealed, len, &delivery, plain, sizeof plain, &info),
             MQSEAL_ERR_DUPLICATE, "duplicate byte 0xFF reads as true");

    mqseal_seal_options options;
    memset(&options, 0, sizeof options);
    memcpy(&options.retain, &two, 1);
    REQUIRE_OK(mqseal_seal(sealer, "a/bools", (const uint8_t *)"r", 1, &options, sealed,
                           sizeof sealed, &len));
    mqseal_header header;
    REQUIRE_OK(mqseal_inspect(sealed, len, &header));
    CHECK(header.retain && !header.has_timestamp, "retain byte 2 sealed as retained");

    mqseal_open_policy policy = mqseal_open_policy_default();
    memcpy(&policy.require_timestamp, &ff, 1);
    mqseal_opener *strict = NULL;
    REQUIRE_OK(mqseal_opener_new(&policy, &strict));
    REQUIRE_OK(mqseal_opener_trust_sender(strict, me_pub, sizeof me_pub));
    REQUIRE_OK(mqseal_opener_add_key(strict, root_key));
    memset(&delivery, 0, sizeof delivery);
    delivery.retained = true;
    CHECK_RC(mqseal_open(strict, "a/bools", sealed, len, &delivery, plain, sizeof plain, &info),
             MQSEAL_ERR_MISSING_TIMESTAMP, "require_timestamp byte 0xFF reads as true");
    mqseal_opener_free(strict);
}

int main(void) {
    setup();
    test_bad_topics();
    test_payload_sizes();
    test_garbage_messages();
    test_garbage_grants_and_keys();
    test_bool_fields_with_other_bytes();
    test_overlapping_outputs();
    teardown();
    printf("C API bad-input tests\n");
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
