/*
 * Helpers shared by the mqseal C examples: hex arguments and key loading. Key material comes from
 * bytes (here hex on the command line; on a device: flash, a secure element, a provisioning
 * file), never from a mqseal-specific file format.
 */
#ifndef MQSEAL_DEMO_H
#define MQSEAL_DEMO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "mqseal.h"

/* Decodes exactly `len` bytes of hex; returns 0 on success. */
static int demo_unhex(const char *hex, uint8_t *out, size_t len) {
    if (strlen(hex) != 2 * len) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (uint8_t)byte;
    }
    return 0;
}

static void demo_print_hex(FILE *f, const uint8_t *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) fprintf(f, "%02x", bytes[i]);
}

/* Prints "what: error_name (explanation)" to stderr and returns 1 when rc is not MQSEAL_OK. */
static int demo_failed(const char *what, mqseal_result rc) {
    if (rc == MQSEAL_OK) return 0;
    char text[128];
    mqseal_error_text(rc, text, sizeof text);
    fprintf(stderr, "%s: %s (%s)\n", what, mqseal_error_name(rc), text);
    return 1;
}

/* Loads a tree key given as FILTER:EPOCH:SECRET_HEX (e.g. "demo/#:1:<64 hex digits>"). */
static mqseal_tree_key *demo_load_key(const char *spec) {
    char filter[256];
    unsigned epoch;
    uint8_t secret[MQSEAL_KEY_LEN];
    const char *colon = strrchr(spec, ':');
    const char *first = strchr(spec, ':');
    mqseal_tree_key *key = NULL;
    if (!colon || first == colon || (size_t)(first - spec) >= sizeof filter ||
        strlen(colon + 1) != 2 * MQSEAL_KEY_LEN) {
        fprintf(stderr, "key must be FILTER:EPOCH:SECRET_HEX, got %s\n", spec);
        return NULL;
    }
    memcpy(filter, spec, (size_t)(first - spec));
    filter[first - spec] = 0;
    if (sscanf(first + 1, "%u:", &epoch) != 1 || demo_unhex(colon + 1, secret, sizeof secret)) {
        fprintf(stderr, "bad epoch or secret in %s\n", spec);
        return NULL;
    }
    mqseal_result rc = mqseal_tree_key_new(filter, epoch, secret, sizeof secret, &key);
    memset(secret, 0, sizeof secret);
    return demo_failed("loading the key", rc) ? NULL : key;
}

/* The TLS and login flags of mosquitto_pub, given to libmosquitto as mosquitto_pub does:
 * -A CAFILE (--cafile), -c CERT and -K KEY (--cert/--key), -u USER and -w PASSWORD (-u/-P).
 * libmosquitto verifies the broker's certificate and host name itself (OpenSSL, the CN when the
 * certificate has no DNS name): what mosquitto_pub accepts, these examples accept. */
struct demo_login {
    const char *cafile, *cert, *key, *user, *password;
};

static int demo_secure(struct mosquitto *mosq, const struct demo_login *l) {
    int rc = MOSQ_ERR_SUCCESS;
    if (l->cafile) rc = mosquitto_tls_set(mosq, l->cafile, NULL, l->cert, l->key, NULL);
    if (rc == MOSQ_ERR_SUCCESS && l->user)
        rc = mosquitto_username_pw_set(mosq, l->user, l->password);
    if (rc != MOSQ_ERR_SUCCESS) fprintf(stderr, "TLS/login options: %s\n", mosquitto_strerror(rc));
    return rc;
}

#endif /* MQSEAL_DEMO_H */
