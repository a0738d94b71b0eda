/* Seal and open rate of the C API for one profile and payload size.
 *
 *   cargo build --release -p mqseal-ffi && make -C bindings/c/bench
 *   target/c/bench/bench_rate signed 64 4000
 *   # seal_per_s=36488 open_per_s=26101
 *
 * Same set-up as the Rust reference (crates/mqseal/examples/rate.rs) and the Python script
 * (bindings/python/bench/bench_rate.py): one topic, a fixed payload, COUNT messages sealed back to
 * back, then COUNT fresh messages opened back to back, each after a short warm-up. Sealing and
 * opening use caller buffers (no allocation per message). scripts/bench/bindings.sh runs all
 * three in one go and prints the ratios (BENCHMARKS.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqseal.h"

#define TOPIC "bench/rate/t"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(mqseal_result r, const char *what) {
  if (r != 0) {
    fprintf(stderr, "%s failed: %s\n", what, mqseal_error_name(r));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "signed") != 0 && strcmp(argv[1], "group-mac") != 0)) {
    fprintf(stderr, "usage: bench_rate signed|group-mac SIZE COUNT\n");
    return 2;
  }
  uint32_t profile = strcmp(argv[1], "signed") == 0 ? MQSEAL_PROFILE_SIGNED : MQSEAL_PROFILE_GROUP_MAC;
  size_t size = (size_t)strtoul(argv[2], NULL, 10);
  size_t count = (size_t)strtoul(argv[3], NULL, 10);
  size_t warm = count / 10 > 0 ? count / 10 : 1;
  size_t total = warm + count;

  uint8_t seed[MQSEAL_SEED_LEN], secret[MQSEAL_KEY_LEN], pub[MQSEAL_PUBLIC_IDENTITY_LEN];
  memset(seed, 1, sizeof seed);
  memset(secret, 2, sizeof secret);
  mqseal_identity *me;
  mqseal_tree_key *key;
  mqseal_sealer *sealer;
  mqseal_opener *opener;
  check(mqseal_identity_from_seed(seed, sizeof seed, &me), "mqseal_identity_from_seed");
  check(mqseal_identity_public(me, pub, sizeof pub), "mqseal_identity_public");
  check(mqseal_tree_key_new("bench/#", 1, secret, sizeof secret, &key), "mqseal_tree_key_new");
  check(mqseal_sealer_new(me, profile, 0, &sealer), "mqseal_sealer_new");
  check(mqseal_sealer_add_key(sealer, key), "mqseal_sealer_add_key");
  mqseal_open_policy policy = mqseal_open_policy_default();
  check(mqseal_opener_new(&policy, &opener), "mqseal_opener_new");
  check(mqseal_opener_trust_sender(opener, pub, sizeof pub), "mqseal_opener_trust_sender");
  check(mqseal_opener_trust_group_mac_sender(opener, pub, sizeof pub, "bench/#"),
        "mqseal_opener_trust_group_mac_sender");
  check(mqseal_opener_add_key(opener, key), "mqseal_opener_add_key");

  uint8_t *payload = malloc(size ? size : 1);
  size_t cap = MQSEAL_SEALED_BUFFER_LEN(size);
  uint8_t *out = malloc(cap);
  /* The messages to open, sealed beforehand (untimed): total x cap bytes. */
  uint8_t *sealed = malloc(total * cap);
  size_t *sealed_len = malloc(total * sizeof *sealed_len);
  if (!payload || !out || !sealed || !sealed_len) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  memset(payload, 0x42, size);
  size_t n;

  for (size_t i = 0; i < warm; i++)
    check(mqseal_seal(sealer, TOPIC, payload, size, NULL, out, cap, &n), "mqseal_seal");
  double t = now_s();
  for (size_t i = 0; i < count; i++)
    check(mqseal_seal(sealer, TOPIC, payload, size, NULL, out, cap, &n), "mqseal_seal");
  double seal_per_s = (double)count / (now_s() - t);

  for (size_t i = 0; i < total; i++)
    check(mqseal_seal(sealer, TOPIC, payload, size, NULL, sealed + i * cap, cap, &sealed_len[i]),
          "mqseal_seal");
  mqseal_opened info;
  for (size_t i = 0; i < warm; i++)
    check(mqseal_open(opener, TOPIC, sealed + i * cap, sealed_len[i], NULL, out, cap, &info),
          "mqseal_open");
  t = now_s();
  for (size_t i = warm; i < total; i++)
    check(mqseal_open(opener, TOPIC, sealed + i * cap, sealed_len[i], NULL, out, cap, &info),
          "mqseal_open");
  double open_per_s = (double)count / (now_s() - t);
  printf("seal_per_s=%.0f open_per_s=%.0f\n", seal_per_s, open_per_s);

  free(sealed_len);
  free(sealed);
  free(out);
  free(payload);
  mqseal_opener_free(opener);
  mqseal_sealer_free(sealer);
  mqseal_tree_key_free(key);
  mqseal_identity_free(me);
  return 0;
}
