/*
 * mqseal budget firmware: what a device that seals and opens signed messages costs, measured on
 * an emulated Cortex-M4F (QEMU mps2-an386). Its flash and RAM (arm-none-eabi-size) are the
 * figures of BENCHMARKS.md, "Firmware budget"; it prints, as `key=value` lines:
 *
 * - heap: the high-water mark and what stays in use for one sealer (one key) and one opener that
 *   trusts 8 senders and holds their 8 replay windows (one topic each), measured by wrapping
 *   malloc/realloc/free (-Wl,--wrap) and summing malloc_usable_size;
 * - stack: the peak stack of mqseal_seal and mqseal_open (signed profile, first message on a
 *   topic and steady state) and of mqseal_identity_from_seed, by painting the stack below the
 *   caller with a pattern and finding the deepest overwritten word;
 * - instructions: with QEMU -icount shift=0 (one instruction = 1 ns of virtual time), SysTick on
 *   the processor clock counts virtual time; a calibration loop of known length converts ticks
 *   to instructions. Estimates: QEMU counts guest instructions, not Cortex-M4 cycles.
 *
 * Sealers are made with mqseal_sealer_new and draw each message's 8-byte salt (protocol v2) from
 * the generator registered with mqseal_set_random: here a stand-in for a TRNG register (QEMU's
 * mps2 has none), so the figures include one generator call per seal. Messages are sealed with
 * NULL options: no timestamp in a firmware build (no clock).
 *
 * With -DMQSEAL_ARENA (the library built with the feature `arena`) mqseal's heap is a 16 KiB
 * static arena handed over with mqseal_heap_init, measured with mqseal_heap_usage.
 *
 * With -DBUDGET_SEAL_ONLY it only seals (a sensor that never opens): flash of that build option.
 * Exits with 0 when every call succeeded and every message opened to its payload, else 1.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firmware.h"
#include "mqseal.h"

#define N_SENDERS 8
static const char TOPIC[] = "plant/7/temp";
static const uint8_t READING[] = "21.5 C";
#define READING_LEN (sizeof READING - 1)

/* ---- output without printf (keeps the flash figure about mqseal, not stdio) ---------------- */

static void put(const char *s) { fw_console_write(s, strlen(s)); }

static void put_u32(uint32_t v) {
    char digits[11];
    int i = sizeof digits;
    digits[--i] = 0;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(&digits[i]);
}

static void figure(const char *key, uint32_t value) {
    put(key);
    put("=");
    put_u32(value);
    put("\n");
}

static int failures;

static void require(mqseal_result rc, const char *what) {
    if (rc != MQSEAL_OK) {
        put("FAILED: ");
        put(what);
        put(": ");
        put(mqseal_error_name(rc));
        put("\n");
        failures++;
    }
}

/* ---- heap accounting ------------------------------------------------------------------------ */

#ifdef MQSEAL_ARENA
/* The library built with the feature `arena`: mqseal's heap is this static arena, handed over at
 * start-up; what is in use and the high-water mark come from mqseal_heap_usage (the allocator's
 * own count). The high-water mark cannot be reset: it also covers the 8 senders' sealers, which
 * peak lower than the device (printed as heap_peak_after_senders). */
static uint8_t arena[16 * 1024] __attribute__((aligned(8)));

static size_t arena_figure(bool peak) {
    size_t used = 0, high = 0;
    if (mqseal_heap_usage(&used, &high) != MQSEAL_OK) failures++;
    return peak ? high : used;
}
#define HEAP_IN_USE() arena_figure(false)
#define HEAP_PEAK() arena_figure(true)
#else
void *__real_malloc(size_t);
void *__real_realloc(void *, size_t);
void __real_free(void *);
static size_t heap_in_use, heap_peak;

static void heap_add(void *p) {
    if (p) heap_in_use += malloc_usable_size(p);
    if (heap_in_use > heap_peak) heap_peak = heap_in_use;
}

void *__wrap_malloc(size_t n) {
    void *p = __real_malloc(n);
    heap_add(p);
    return p;
}

void __wrap_free(void *p) {
    if (p) heap_in_use -= malloc_usable_size(p);
    __real_free(p);
}

void *__wrap_realloc(void *old, size_t n) {
    size_t before = old ? malloc_usable_size(old) : 0;
    void *p = __real_realloc(old, n);
    if (p || n == 0) {
        heap_in_use -= before;
        heap_add(p);
    }
    return p;
}
#define HEAP_IN_USE() heap_in_use
#define HEAP_PEAK() heap_peak
#endif

/* ---- stack painting ------------------------------------------------------------------------- */

extern uint32_t _stack_limit;
#define PAINT 0xC5A1C5A1u

static inline uintptr_t current_sp(void) {
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints the free stack from its limit up to just below the caller's frame. */
__attribute__((noinline)) static void paint_stack(void) {
    volatile uint32_t *p = &_stack_limit;
    uint32_t *top = (uint32_t *)(current_sp() - 64);
    while ((uint32_t *)p < top) *p++ = PAINT;
}

/* Bytes of stack used below `sp` since the last paint_stack. */
static uint32_t stack_used_below(uintptr_t sp) {
    const uint32_t *p = &_stack_limit;
    while ((uintptr_t)p < sp && *p == PAINT) p++;
    return (uint32_t)(sp - (uintptr_t)p);
}

/* ---- instruction counting ------------------------------------------------------------------- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

static void systick_start(void) {
    SYST_RVR = 0xFFFFFF;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enabled, processor clock, no interrupt */
}

static uint32_t ticks(void) { return SYST_CVR; }

/* SysTick counts down and wraps every 2^24 ticks (each measured call is far shorter). */
static uint32_t elapsed(uint32_t start, uint32_t end) { return (start - end) & 0xFFFFFF; }

/* 2 instructions per iteration (subs, bne). */
__attribute__((noinline)) static void spin(uint32_t n) {
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

static uint64_t insn_per_kilotick; /* calibration: instructions per 1000 SysTick ticks */

static void calibrate(void) {
    const uint32_t n = 1000000;
    uint32_t t0 = ticks();
    spin(n);
    uint32_t dt = elapsed(t0, ticks());
    insn_per_kilotick = dt ? (uint64_t)2 * n * 1000 / dt : 0;
}

static uint32_t to_insn(uint32_t dt) { return (uint32_t)(dt * insn_per_kilotick / 1000); }

/* ---- randomness ----------------------------------------------------------------------------- */

/* The stand-in for a TRNG data register (QEMU's mps2 has none): xorshift32, NOT SECURE, only here
 * so that sealing has a generator to draw its salts from. A real firmware reads its TRNG (or a
 * DRBG seeded from it) here. */
static int stand_in_trng(void *ctx, uint8_t *buf, size_t len) {
    uint32_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        buf[i] = (uint8_t)*state;
    }
    return 0;
}

/* ---- the device ----------------------------------------------------------------------------- */

static mqseal_identity *identity(uint8_t fill) {
    uint8_t seed[MQSEAL_SEED_LEN];
    mqseal_identity *id = NULL;
    memset(seed, fill, sizeof seed);
    require(mqseal_identity_from_seed(seed, sizeof seed, &id), "identity_from_seed");
    return id;
}

static mqseal_tree_key *plant_key(void) {
    uint8_t secret[MQSEAL_KEY_LEN];
    mqseal_tree_key *key = NULL;
    memset(secret, 0x77, sizeof secret);
    require(mqseal_tree_key_new("plant/#", 1, secret, sizeof secret, &key), "tree_key_new");
    return key;
}

int main(void) {
    systick_start();
    calibrate();
    figure("calibration_insn_per_kilotick", (uint32_t)insn_per_kilotick);
    /* Once at start-up, before any sealer is made (mqseal_sealer_new refuses without it). */
    static uint32_t trng_state = 0x2545F491u;
    mqseal_set_random(stand_in_trng, &trng_state);
    uintptr_t sp;
    uint32_t t0;

    /* The device's own identity and sealer (stack and time of the first and a later seal). */
#ifdef MQSEAL_ARENA
    require(mqseal_heap_init(arena, sizeof arena), "heap_init");
#endif
    size_t heap_base = HEAP_IN_USE();
#ifndef MQSEAL_ARENA
    heap_peak = heap_in_use;
#endif
    paint_stack();
    sp = current_sp();
    mqseal_identity *me = identity(0x42);
    figure("stack_identity_from_seed", stack_used_below(sp));
    mqseal_tree_key *key = plant_key();
    mqseal_sealer *sealer = NULL;
    /* A device that never sealed starts at 0 (otherwise: its persisted sequence limit). */
    require(mqseal_sealer_new(me, MQSEAL_PROFILE_SIGNED, 0, &sealer), "sealer_new");
    require(mqseal_sealer_add_key(sealer, key), "sealer_add_key");
    uint8_t sealed[MQSEAL_SEALED_BUFFER_LEN(READING_LEN)];
    size_t sealed_len = 0;
    paint_stack();
    sp = current_sp();
    t0 = ticks();
    require(mqseal_seal(sealer, TOPIC, READING, READING_LEN, NULL, sealed, sizeof sealed,
                        &sealed_len),
            "seal (first on the topic)");
    uint32_t dt = elapsed(t0, ticks());
    figure("stack_seal_signed_first", stack_used_below(sp));
    figure("insn_seal_signed_first", to_insn(dt));
    paint_stack();
    sp = current_sp();
    t0 = ticks();
    require(mqseal_seal(sealer, TOPIC, READING, READING_LEN, NULL, sealed, sizeof sealed,
                        &sealed_len),
            "seal");
    dt = elapsed(t0, ticks());
    figure("stack_seal_signed", stack_used_below(sp));
    figure("insn_seal_signed", to_insn(dt));
    figure("sealed_len", (uint32_t)sealed_len);
    figure("heap_sealer", (uint32_t)(HEAP_IN_USE() - heap_base)); /* identity, key, sealer */

#ifndef BUDGET_SEAL_ONLY
    /* 8 senders' messages, sealed beforehand (their sealers are not part of the budget). */
    static uint8_t msgs[N_SENDERS][MQSEAL_SEALED_BUFFER_LEN(READING_LEN)];
    static size_t lens[N_SENDERS];
    static uint8_t pubs[N_SENDERS][MQSEAL_PUBLIC_IDENTITY_LEN];
    static uint8_t again[MQSEAL_SEALED_BUFFER_LEN(READING_LEN)];
    size_t again_len = 0;
    size_t paused = HEAP_IN_USE(), paused_peak = HEAP_PEAK();
    for (int i = 0; i < N_SENDERS; i++) {
        mqseal_identity *sender = identity((uint8_t)(0x10 + i));
        mqseal_sealer *s = NULL;
        require(mqseal_identity_public(sender, pubs[i], sizeof pubs[i]), "identity_public");
        require(mqseal_sealer_new(sender, MQSEAL_PROFILE_SIGNED, 0, &s), "sealer_new");
        require(mqseal_sealer_add_key(s, key), "sealer_add_key");
        require(mqseal_seal(s, TOPIC, READING, READING_LEN, NULL, msgs[i], sizeof msgs[i],
                            &lens[i]),
                "sender seal");
        if (i == 0)
            require(mqseal_seal(s, TOPIC, READING, READING_LEN, NULL, again, sizeof again,
                                &again_len),
                    "sender seal");
        mqseal_sealer_free(s);
        mqseal_identity_free(sender);
    }
    if (HEAP_IN_USE() != paused) {
        put("FAILED: the senders' sealers did not give their heap back\n");
        failures++;
    }
#ifdef MQSEAL_ARENA
    (void)paused_peak;
    figure("heap_peak_after_senders", (uint32_t)(HEAP_PEAK() - heap_base));
#else
    heap_peak = paused_peak;
#endif

    /* The device's opener: 8 trusted senders, one key, 8 replay windows. */
    mqseal_opener *opener = NULL;
    require(mqseal_opener_new(NULL, &opener), "opener_new");
    for (int i = 0; i < N_SENDERS; i++)
        require(mqseal_opener_trust_sender(opener, pubs[i], sizeof pubs[i]), "trust_sender");
    require(mqseal_opener_add_key(opener, key), "opener_add_key");
    size_t heap_opener = HEAP_IN_USE();
    figure("heap_opener_8_senders_no_window", (uint32_t)(HEAP_IN_USE() - paused));
    uint8_t plain[sizeof msgs[0]];
    mqseal_opened info;
    uint32_t first_stack = 0, first_insn = 0, stack = 0, insn = 0;
    for (int i = 0; i < N_SENDERS; i++) {
        paint_stack();
        sp = current_sp();
        t0 = ticks();
        require(mqseal_open(opener, TOPIC, msgs[i], lens[i], NULL, plain, sizeof plain, &info),
                "open");
        dt = elapsed(t0, ticks());
        uint32_t used = stack_used_below(sp);
        if (info.payload_len != READING_LEN || memcmp(plain, READING, READING_LEN) != 0) {
            put("FAILED: opened payload differs\n");
            failures++;
        }
        if (i == 0) {
            first_stack = used;
            first_insn = to_insn(dt);
        } else {
            if (used > stack) stack = used;
            insn = to_insn(dt); /* the last one: a sender's first message on a known topic */
        }
    }
    figure("heap_8_windows", (uint32_t)(HEAP_IN_USE() - heap_opener));
    figure("stack_open_signed_first", first_stack);
    figure("insn_open_signed_first", first_insn);
    figure("stack_open_signed", stack);
    figure("insn_open_signed", insn);
    /* Steady state: sender 0's second message (its window exists, its topic key is cached). */
    t0 = ticks();
    require(mqseal_open(opener, TOPIC, again, again_len, NULL, plain, sizeof plain, &info),
            "open (steady)");
    figure("insn_open_signed_steady", to_insn(elapsed(t0, ticks())));
    if (info.seq != 1) {
        put("FAILED: steady-state message\n");
        failures++;
    }
#endif
    mqseal_identity_free(me);
    mqseal_tree_key_free(key);
    figure("heap_peak", (uint32_t)(HEAP_PEAK() - heap_base));
    figure("heap_in_use", (uint32_t)(HEAP_IN_USE() - heap_base));
    figure("senders", N_SENDERS);
#ifndef BUDGET_SEAL_ONLY
    mqseal_opener_free(opener);
#endif
    mqseal_sealer_free(sealer);
    figure("heap_after_free", (uint32_t)(HEAP_IN_USE() - heap_base));
    if (HEAP_IN_USE() != heap_base) {
        put("FAILED: memory still allocated after every handle was freed\n");
        failures++;
    }
    put(failures ? "budget: FAILED\n" : "budget: ok\n");
    return failures ? 1 : 0;
}
