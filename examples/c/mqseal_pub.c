/*
 * mqseal_pub: publishes sealed messages with libmosquitto.
 *
 *   mqseal_pub -s SEED_HEX -P
 *       prints the publisher's public identity (hex) for subscribers to trust, and exits
 *   mqseal_pub -s SEED_HEX -k FILTER:EPOCH:SECRET_HEX -t TOPIC -m MESSAGE
 *              [-h HOST] [-p PORT] [-n COUNT] [-r] [-q SEQ_FILE]
 *              [-A CAFILE [-c CERT -K KEY]] [-u USER -w PASSWORD]
 *       seals MESSAGE (COUNT times, numbered when COUNT > 1) with the current time as its
 *       timestamp and publishes it on TOPIC at QoS 1
 *
 * -q SEQ_FILE keeps the sequence counter crash-safe across runs: before sealing, the publisher
 * reserves a block of numbers by durably writing its end to SEQ_FILE, and resumes from there on
 * the next run (a number is never used twice, even after a crash). Without -q the counter starts
 * at 0, which is right only for an identity that never sealed before: subscribers refuse numbers
 * they already accepted as replays (mqseal v2 salts every message, so a repeated number never
 * weakens the encryption, but it is still refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "demo.h"

#define SEQ_BLOCK 1000

struct pub {
    mqseal_sealer *sealer;
    const char *topic, *message;
    unsigned count, acked;
    bool retain, sent;
    int failed;
};

/* Reads the reserved limit from `path` (0 if absent) and durably stores limit + SEQ_BLOCK. */
static int reserve_block(const char *path, uint64_t *next, uint64_t *limit) {
    uint64_t stored = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%" SCNu64, &stored) != 1) stored = 0;
        fclose(f);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    char line[32];
    int n = snprintf(line, sizeof line, "%" PRIu64 "\n", stored + SEQ_BLOCK);
    if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) return -1;
    *next = stored;
    *limit = stored + SEQ_BLOCK;
    return 0;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc) {
    struct pub *p = obj;
    if (rc != 0) {
        fprintf(stderr, "connect refused: %s\n", mosquitto_connack_string(rc));
        p->failed = 1;
        mosquitto_disconnect(mosq);
        return;
    }
    if (p->sent) return; /* a reconnect: every message was sealed and queued once already */
    p->sent = true;
    size_t message_len = strlen(p->message);
    char *text = malloc(message_len + 32);
    uint8_t *sealed = malloc(MQSEAL_SEALED_BUFFER_LEN(message_len + 32));
    for (unsigned i = 0; i < p->count; i++) {
        int len = p->count > 1 ? sprintf(text, "%s #%u", p->message, i + 1)
                               : sprintf(text, "%s", p->message);
        /* The timestamp lets subscribers with a maximum age refuse messages a broker held back
         * (NULL options would do the same for a message that is not retained). */
        mqseal_seal_options options = {
            .retain = p->retain, .has_timestamp = true, .timestamp = (uint64_t)time(NULL)};
        size_t sealed_len = 0;
        mqseal_result r = mqseal_seal(p->sealer, p->topic, (const uint8_t *)text, (size_t)len,
                                      &options, sealed, MQSEAL_SEALED_BUFFER_LEN(message_len + 32),
                                      &sealed_len);
        if (demo_failed("sealing", r)) {
            p->failed = 1;
            break;
        }
        int mrc = mosquitto_publish(mosq, NULL, p->topic, (int)sealed_len, sealed, 1, p->retain);
        if (mrc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish: %s\n", mosquitto_strerror(mrc));
            p->failed = 1;
            break;
        }
    }
    free(text);
    free(sealed);
    if (p->failed) mosquitto_disconnect(mosq);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid) {
    struct pub *p = obj;
    (void)mid;
    if (++p->acked == p->count) mosquitto_disconnect(mosq);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *seed_hex = NULL, *key_spec = NULL, *seq_file = NULL;
    int port = 1883, opt;
    struct demo_login login = {0};
    bool print_public = false;
    struct pub p = {.count = 1};
    while ((opt = getopt(argc, argv, "h:p:s:k:t:m:n:rq:PA:c:K:u:w:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'A': login.cafile = optarg; break;
        case 'c': login.cert = optarg; break;
        case 'K': login.key = optarg; break;
        case 'u': login.user = optarg; break;
        case 'w': login.password = optarg; break;
        case 's': seed_hex = optarg; break;
        case 'k': key_spec = optarg; break;
        case 't': p.topic = optarg; break;
        case 'm': p.message = optarg; break;
        case 'n': p.count = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'r': p.retain = true; break;
        case 'q': seq_file = optarg; break;
        case 'P': print_public = true; break;
        default: return 2;
        }
    }
    uint8_t seed[MQSEAL_SEED_LEN];
    if (!seed_hex || demo_unhex(seed_hex, seed, sizeof seed)) {
        fprintf(stderr, "-s SEED_HEX (64 hex digits) is required\n");
        return 2;
    }
    mqseal_identity *me = NULL;
    mqseal_result r = mqseal_identity_from_seed(seed, sizeof seed, &me);
    memset(seed, 0, sizeof seed);
    if (demo_failed("identity", r)) return 1;
    if (print_public) {
        uint8_t pub[MQSEAL_PUBLIC_IDENTITY_LEN];
        if (demo_failed("public identity", mqseal_identity_public(me, pub, sizeof pub))) return 1;
        demo_print_hex(stdout, pub, sizeof pub);
        putchar('\n');
        mqseal_identity_free(me);
        return 0;
    }
    if (!key_spec || !p.topic || !p.message || p.count == 0) {
        fprintf(stderr, "-k KEY, -t TOPIC and -m MESSAGE are required\n");
        return 2;
    }
    mqseal_tree_key *key = demo_load_key(key_spec);
    if (!key) return 1;
    /* The first sequence number: the reserved block's start, else 0 (see the top). */
    uint64_t start = 0, limit = UINT64_MAX;
    if (seq_file && (p.count > SEQ_BLOCK || reserve_block(seq_file, &start, &limit) != 0)) {
        fprintf(stderr, "cannot reserve sequence numbers in %s: %s\n", seq_file, strerror(errno));
        return 1;
    }
    if (demo_failed("sealer", mqseal_sealer_new(me, MQSEAL_PROFILE_SIGNED, start, &p.sealer)) ||
        demo_failed("sequence block", mqseal_sealer_set_sequence(p.sealer, start, limit)) ||
        demo_failed("key", mqseal_sealer_add_key(p.sealer, key)))
        return 1;

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, &p);
    if (!mosq) return 1;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_publish_callback_set(mosq, on_publish);
    if (demo_secure(mosq, &login) != MOSQ_ERR_SUCCESS) return 1;
    int rc = mosquitto_connect(mosq, host, port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect to %s:%d: %s\n", host, port, mosquitto_strerror(rc));
        return 1;
    }
    int lrc = mosquitto_loop_forever(mosq, -1, 1);
    if (lrc != MOSQ_ERR_SUCCESS) fprintf(stderr, "connection: %s\n", mosquitto_strerror(lrc));
    uint64_t next = 0;
    mqseal_sealer_next_seq(p.sealer, &next);
    printf("published %u sealed message(s) on %s (next sequence number %" PRIu64 ")\n", p.acked,
           p.topic, next);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    mqseal_sealer_free(p.sealer);
    mqseal_tree_key_free(key);
    mqseal_identity_free(me);
    return p.failed || p.acked != p.count;
}
