#!/usr/bin/env python3
"""Converts spec/vectors/*.json into a C header for the C tests (C has no JSON parser).

Usage: vectors_to_c.py SPEC_VECTORS_DIR OUT_HEADER

Byte strings stay hex (the tests decode them); every field the C tests replay is emitted.
hpke-rfc9180-a2.json is not converted: HPKE internals are not part of the C API (grants.json
covers HPKE through the API, and the Rust tests replay RFC 9180 A.2.1).
"""
import json
import sys
from pathlib import Path


def c_str(value):
    """A C string literal of `value` (UTF-8; non-printable bytes as 3-digit octal escapes)."""
    if value is None:
        return "NULL"
    out = []
    for b in value.encode("utf-8"):
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in '"\\?':
            out.append(ch)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def c_bool(value):
    return "true" if value else "false"


def c_u64(value):
    return "UINT64_C(%d)" % (value or 0)


def key(k):
    """A vec_key: filter, epoch, secret, then the validity (spec 4.1) as
    mqseal_tree_key_set_validity takes it: not_before (0: always), not_after (0: never); absent in
    the JSON means no limit."""
    return "{%s, %d, %s, %s, %s}" % (
        c_str(k["filter"]), k["epoch"], c_str(k["secret"]),
        c_u64(k.get("not_before", 0)), c_u64(k.get("not_after")))


def scopes(lines, tag, v):
    """Emits the scope arrays of a grant vector and returns (has_scopes, array name): scopes[i]
    = the filters trusted_issuers[i] is trusted for, as {filters, count} (vec_scope, the shape of
    struct mqseal_issuer's scope and scope_count); a vector without scopes trusts every issuer
    for the whole tree (NULL)."""
    if "scopes" not in v:
        return "false", "NULL"
    assert len(v["scopes"]) == len(v["trusted_issuers"]), tag
    for j, scope in enumerate(v["scopes"]):
        lines.append("static const char *const %s_%d[] = {%s};" % (
            tag, j, ", ".join(c_str(f) for f in scope) or "NULL"))
    lines.append("static const vec_scope %s[] = {%s};" % (
        tag, ", ".join("{%s_%d, %d}" % (tag, j, len(scope)) for j, scope in enumerate(v["scopes"]))
        or "{NULL, 0}"))
    return "true", tag


def profile(name):
    return {"signed": "MQSEAL_PROFILE_SIGNED", "group-mac": "MQSEAL_PROFILE_GROUP_MAC"}[name]


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    load = lambda name: json.loads((src / name).read_text())
    lines = [
        "/* Generated from the JSON files in spec/vectors by bindings/c/tests/vectors_to_c.py. Do not edit. */",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "typedef struct { const char *filter; uint32_t epoch; const char *secret;"
        " uint64_t not_before, not_after; } vec_key;",
        "",
    ]

    ids = load("identities.json")["vectors"]
    lines.append(
        "typedef struct { const char *seed, *public_identity, *fingerprint, *sender_id; } vec_identity;"
    )
    lines.append("static const vec_identity IDENTITIES[] = {")
    for v in ids:
        lines.append(
            "    {%s, %s, %s, %s},"
            % tuple(c_str(v[f]) for f in ("seed", "public_identity", "fingerprint", "sender_id"))
        )
    lines += ["};", "#define N_IDENTITIES %d" % len(ids), ""]
    bad_ids = load("identities.json").get("invalid_public_identities", [])
    lines.append(
        "typedef struct { const char *name, *public_identity; uint32_t code; const char *error; }"
        " vec_invalid_identity;"
    )
    lines.append("static const vec_invalid_identity INVALID_IDENTITIES[] = {")
    for v in bad_ids:
        lines.append(
            "    {%s, %s, %d, %s},"
            % (c_str(v["name"]), c_str(v["public_identity"]), v["code"], c_str(v["error"]))
        )
    if not bad_ids:
        lines.append("    {NULL, NULL, 0, NULL},")
    lines += ["};", "#define N_INVALID_IDENTITIES %d" % len(bad_ids), ""]

    ks = load("key-schedule.json")
    lines.append("static const vec_key KS_ROOT = %s;" % key(ks["root"]))
    # key_choice (spec 6 step 2): the key a sealer holding `keys` uses on `topic` at `now` (the
    # message's timestamp): keys[chosen], or the refusal `code` (chosen -1).
    lines.append(
        "typedef struct { const char *description; const vec_key *keys; size_t n_keys;"
        " const char *topic; uint64_t now; int chosen; uint32_t code; } vec_key_choice;"
    )
    for i, c in enumerate(ks["key_choice"]):
        lines.append("static const vec_key KEY_CHOICE_KEYS_%d[] = {%s};" % (
            i, ", ".join(key(k) for k in c["keys"])))
    lines.append("static const vec_key_choice KEY_CHOICE[] = {")
    for i, c in enumerate(ks["key_choice"]):
        lines.append("    {%s, KEY_CHOICE_KEYS_%d, %d, %s, %s, %d, %d}," % (
            c_str(c["description"]), i, len(c["keys"]), c_str(c["topic"]), c_u64(c["now"]),
            c.get("chosen", -1), c.get("code", 0)))
    lines += ["};", "#define N_KEY_CHOICE %d" % len(ks["key_choice"]), ""]
    lines.append("static const vec_key KS_DERIVATIONS[] = {")
    lines += ["    %s," % key(d) for d in ks["derivations"]]
    lines += ["};", "#define N_KS_DERIVATIONS %d" % len(ks["derivations"]), ""]

    envs = load("envelopes.json")["vectors"]
    # salt: the random bytes the sealer must draw to reproduce `sealed` byte for byte (spec 4.7);
    # key_id and salt are also what mqseal_inspect must read back from the header.
    lines.append(
        "typedef struct { const char *name, *topic, *payload, *sender_seed, *sender_public;"
        " uint32_t profile; uint64_t seq; bool retain, has_timestamp; uint64_t timestamp;"
        " vec_key sealer_key, opener_key; const char *key_id, *salt, *sealed; size_t overhead; }"
        " vec_envelope;"
    )
    lines.append("static const vec_envelope ENVELOPES[] = {")
    for v in envs:
        lines.append(
            "    {%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d},"
            % (
                c_str(v["name"]),
                c_str(v["topic"]),
                c_str(v["payload"]),
                c_str(v["sender_seed"]),
                c_str(v["sender_public"]),
                profile(v["profile"]),
                c_u64(v["seq"]),
                c_bool(v["retain"]),
                c_bool(v["timestamp"] is not None),
                c_u64(v["timestamp"]),
                key(v["sealer_key"]),
                key(v["opener_key"]),
                c_str(v["key_id"]),
                c_str(v["salt"]),
                c_str(v["sealed"]),
                v["overhead"],
            )
        )
    lines += ["};", "#define N_ENVELOPES %d" % len(envs), ""]

    negs = load("envelopes-negative.json")["vectors"]
    lines.append("typedef struct { const char *topic, *sealed; } vec_preload;")
    lines.append(
        "typedef struct { const char *filter; uint32_t epoch; uint64_t not_after; } vec_retired;"
    )
    # group_mac: (sender public identity, filter) pairs the opener trusts for the group-mac
    # profile (mqseal_opener_trust_group_mac_sender), besides the signed-only `trusted`.
    lines.append("typedef struct { const char *sender, *filter; } vec_group_mac;")
    lines.append(
        "typedef struct { const char *name, *topic, *sealed; bool"
        " require_timestamp, has_max_age; uint64_t max_age, max_future_skew, validity_grace;"
        " const char *trusted; size_t n_trusted; const vec_key *keys; size_t n_keys;"
        " const vec_preload *preload; size_t n_preload; bool retained, duplicate, has_now;"
        " uint64_t now; uint32_t code; const char *error;"
        " const vec_retired *retired; size_t n_retired;"
        " const vec_group_mac *group_mac; size_t n_group_mac; } vec_negative;"
    )
    for i, v in enumerate(negs):
        lines.append("static const vec_key NEG_KEYS_%d[] = {%s};" % (
            i, ", ".join(key(k) for k in v["opener"]["keys"]) or "{NULL, 0, NULL, 0, 0}"))
        lines.append("static const vec_preload NEG_PRELOAD_%d[] = {%s};" % (
            i, ", ".join("{%s, %s}" % (c_str(p["topic"]), c_str(p["sealed"])) for p in v["preload"])
            or "{NULL, NULL}"))
        lines.append("static const vec_retired NEG_RETIRED_%d[] = {%s};" % (
            i, ", ".join("{%s, %d, %s}" % (c_str(r["filter"]), r["epoch"], c_u64(r["not_after"]))
                         for r in v["opener"].get("retired", []))
            or "{NULL, 0, 0}"))
        lines.append("static const vec_group_mac NEG_GROUP_MAC_%d[] = {%s};" % (
            i, ", ".join("{%s, %s}" % (c_str(g["sender"]), c_str(g["filter"]))
                         for g in v["opener"]["group_mac"])
            or "{NULL, NULL}"))
    lines.append("static const vec_negative NEGATIVES[] = {")
    for i, v in enumerate(negs):
        o, p, d = v["opener"], v["opener"]["policy"], v["delivery"]
        lines.append(
            "    {%s, %s, %s, %s, %s, %s, %s, %s, %s, %d, NEG_KEYS_%d, %d, NEG_PRELOAD_%d, %d,"
            " %s, %s, %s, %s, %d, %s, NEG_RETIRED_%d, %d, NEG_GROUP_MAC_%d, %d},"
            % (
                c_str(v["name"]),
                c_str(v["topic"]),
                c_str(v["sealed"]),
                c_bool(p["require_timestamp"]),
                c_bool(p["max_age"] is not None),
                c_u64(p["max_age"]),
                c_u64(p["max_future_skew"]),
                c_u64(p.get("validity_grace", 86400)),
                c_str("".join(o["trusted"])),
                len(o["trusted"]),
                i,
                len(o["keys"]),
                i,
                len(v["preload"]),
                c_bool(d["retained"]),
                c_bool(d["duplicate"]),
                c_bool(d["now"] is not None),
                c_u64(d["now"]),
                v["code"],
                c_str(v["error"]),
                i,
                len(v["opener"].get("retired", [])),
                i,
                len(o["group_mac"]),
            )
        )
    lines += ["};", "#define N_NEGATIVES %d" % len(negs), ""]

    grants = load("grants.json")
    lines.append(
        "typedef struct { const char *issuer_seed, *recipient_seed, *issuer_public,"
        " *recipient_fingerprint, *ikm, *grant; vec_key key; } vec_grant;"
    )
    lines.append("static const vec_grant GRANTS[] = {")
    for g in grants["positive"]:
        lines.append(
            "    {%s, %s, %s, %s, %s, %s, %s},"
            % (
                c_str(g["issuer_seed"]),
                c_str(g["recipient_seed"]),
                c_str(g["issuer_public"]),
                c_str(g["recipient_fingerprint"]),
                c_str(g["ikm_e"]),
                c_str(g["grant"]),
                key(g["key"]),
            )
        )
    lines += ["};", "#define N_GRANTS %d" % len(grants["positive"]), ""]
    # Issuer scopes (mqseal_grant_accept_scoped): in_scope grants open under their issuers'
    # scopes; negatives with scopes are refused (out_of_scope), the others are unscoped.
    lines.append("typedef struct { const char *const *filters; size_t n; } vec_scope;")
    lines.append(
        "typedef struct { const char *recipient_seed, *trusted; size_t n_trusted;"
        " const vec_scope *scopes; const char *grant; vec_key key; } vec_grant_in_scope;"
    )
    in_scope = grants["in_scope"]
    rows = []
    for i, g in enumerate(in_scope):
        _, tag = scopes(lines, "GRANT_SCOPES_%d" % i, g)
        rows.append(
            "    {%s, %s, %d, %s, %s, %s},"
            % (
                c_str(g["recipient_seed"]),
                c_str("".join(g["trusted_issuers"])),
                len(g["trusted_issuers"]),
                tag,
                c_str(g["grant"]),
                key(g["key"]),
            )
        )
    lines.append("static const vec_grant_in_scope GRANTS_IN_SCOPE[] = {")
    lines += rows or ["    {NULL, NULL, 0, NULL, NULL, {NULL, 0, NULL}},"]
    lines += ["};", "#define N_GRANTS_IN_SCOPE %d" % len(in_scope), ""]
    lines.append(
        "typedef struct { const char *name, *recipient_seed, *trusted; size_t n_trusted;"
        " const char *grant; uint32_t code; const char *error; bool has_scopes;"
        " const vec_scope *scopes; } vec_grant_negative;"
    )
    rows = []
    for i, n in enumerate(grants["negative"]):
        has, tag = scopes(lines, "GRANT_NEG_SCOPES_%d" % i, n)
        rows.append(
            "    {%s, %s, %s, %d, %s, %d, %s, %s, %s},"
            % (
                c_str(n["name"]),
                c_str(n["recipient_seed"]),
                c_str("".join(n["trusted_issuers"])),
                len(n["trusted_issuers"]),
                c_str(n["grant"]),
                n["code"],
                c_str(n["error"]),
                has,
                tag,
            )
        )
    lines.append("static const vec_grant_negative GRANTS_NEGATIVE[] = {")
    lines += rows
    lines += ["};", "#define N_GRANTS_NEGATIVE %d" % len(grants["negative"]), ""]

    rw = load("replay-window.json")
    lines.append("typedef struct { uint64_t seq; const char *result; } vec_replay_step;")
    lines.append("#define REPLAY_WINDOW_SIZE %d" % rw["window"])
    lines.append("static const vec_replay_step REPLAY_STEPS[] = {")
    lines += ["    {%s, %s}," % (c_u64(s["seq"]), c_str(s["result"])) for s in rw["steps"]]
    lines += ["};", "#define N_REPLAY_STEPS %d" % len(rw["steps"]), ""]

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(
        "vectors_to_c: %d identities, %d invalid public identities, %d derivations, %d envelopes,"
        " %d negative envelopes, %d grants, %d in-scope grants, %d negative grants, %d replay"
        " steps -> %s"
        % (len(ids), len(bad_ids), len(ks["derivations"]), len(envs), len(negs),
           len(grants["positive"]), len(grants["in_scope"]),
           len(grants["negative"]), len(rw["steps"]), out)
    )


if __name__ == "__main__":
    main()
