/*
 * mqseal_sub: subscribes with libmosquitto and opens sealed messages.
 *
 *   mqseal_sub -k FILTER:EPOCH:SECRET_HEX -T PUBLIC_IDENTITY_HEX -t TOPIC_FILTER
 *              [-h HOST] [-p PORT] [-n COUNT] [-a MAX_AGE]
 *              [-A CAFILE [-c CERT -K KEY]] [-u USER -w PASSWORD]
 *
 * Trusts the publisher with the given public identity, holds the key, subscribes to TOPIC_FILTER
 * at QoS 1, prints "ready" once subscribed, then one line per verified message:
 *   TOPIC: PAYLOAD (seq N, sender FINGERPRINT-PREFIX)
 * and a line "refused TOPIC: error" for anything that does not verify (forged, replayed, moved to
 * another topic...). Exits after COUNT accepted messages (default: run forever). -a MAX_AGE
 * refuses messages whose timestamp is more than MAX_AGE seconds old (a broker holding messages
 * back) or that carry none (mqseal v2 publishers timestamp by default).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <unistd.h>

#include <mosquitto.h>

#include "demo.h"

struct sub {
    mqseal_opener *opener;
    const char *filter;
    unsigned wanted, accepted, refused;
};

static void on_connect(struct mosquitto *mosq, void *obj, int rc) {
    struct sub *s = obj;
    if (rc != 0) {
        fprintf(stderr, "connect refused: %s\n", mosquitto_connack_string(rc));
        mosquitto_disconnect(mosq);
        return;
    }
    mosquitto_subscribe(mosq, NULL, s->filter, 1);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted_qos) {
    (void)mosq, (void)obj, (void)mid, (void)qos_count, (void)granted_qos;
    printf("ready\n");
    fflush(stdout);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg) {
    struct sub *s = obj;
    /* The plaintext is never longer than the sealed message. */
    uint8_t *plain = malloc(msg->payloadlen > 0 ? (size_t)msg->payloadlen : 1);
    mqseal_delivery delivery = {.retained = msg->retain};
    mqseal_opened info;
    mqseal_result rc = mqseal_open(s->opener, msg->topic, msg->payload, (size_t)msg->payloadlen,
                                   &delivery, plain, (size_t)msg->payloadlen, &info);
    if (rc == MQSEAL_OK) {
        printf("%s: %.*s (seq %" PRIu64 ", sender ", msg->topic, (int)info.payload_len,
               (const char *)plain, info.seq);
        demo_print_hex(stdout, info.sender_fingerprint, 4);
        printf(")\n");
        s->accepted++;
    } else {
        printf("refused %s: %s\n", msg->topic, mqseal_error_name(rc));
        s->refused++;
    }
    fflush(stdout);
    free(plain);
    if (s->wanted && s->accepted >= s->wanted) mosquitto_disconnect(mosq);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *key_spec = NULL, *trusted_hex = NULL;
    int port = 1883, opt;
    struct demo_login login = {0};
    struct sub s = {0};
    mqseal_open_policy policy = mqseal_open_policy_default();
    while ((opt = getopt(argc, argv, "h:p:k:T:t:n:a:A:c:K:u:w:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'A': login.cafile = optarg; break;
        case 'c': login.cert = optarg; break;
        case 'K': login.key = optarg; break;
        case 'u': login.user = optarg; break;
        case 'w': login.password = optarg; break;
        case 'k': key_spec = optarg; break;
        case 'T': trusted_hex = optarg; break;
        case 't': s.filter = optarg; break;
        case 'n': s.wanted = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'a':
            policy.has_max_age = true;
            policy.max_age = strtoull(optarg, NULL, 10);
            break;
        default: return 2;
        }
    }
    uint8_t trusted[MQSEAL_PUBLIC_IDENTITY_LEN];
    if (!key_spec || !s.filter || !trusted_hex ||
        demo_unhex(trusted_hex, trusted, sizeof trusted)) {
        fprintf(stderr, "-k KEY, -T PUBLIC_IDENTITY_HEX (128 hex digits) and -t FILTER are "
                        "required\n");
        return 2;
    }
    mqseal_tree_key *key = demo_load_key(key_spec);
    if (!key) return 1;
    if (demo_failed("opener", mqseal_opener_new(&policy, &s.opener)) ||
        demo_failed("trusting the publisher",
                    mqseal_opener_trust_sender(s.opener, trusted, sizeof trusted)) ||
        demo_failed("key", mqseal_opener_add_key(s.opener, key)))
        return 1;

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, &s);
    if (!mosq) return 1;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    if (demo_secure(mosq, &login) != MOSQ_ERR_SUCCESS) return 1;
    int rc = mosquitto_connect(mosq, host, port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect to %s:%d: %s\n", host, port, mosquitto_strerror(rc));
        return 1;
    }
    int lrc = mosquitto_loop_forever(mosq, -1, 1);
    if (lrc != MOSQ_ERR_SUCCESS) fprintf(stderr, "connection: %s\n", mosquitto_strerror(lrc));
    printf("accepted %u, refused %u\n", s.accepted, s.refused);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    mqseal_opener_free(s.opener);
    mqseal_tree_key_free(key);
    return s.wanted && s.accepted < s.wanted;
}
