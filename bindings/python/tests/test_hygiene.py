"""Secret hygiene of the keystore classes from Python (the core classes are covered in
test_api.py): no key byte in any repr/str, errors about secret files that name the file but not
its content, secret files 0600 and loose ones refused, and no broker password in the paho
wrapper's repr."""

from __future__ import annotations

import stat
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

import mqseal
from mqseal.paho import SealedClient

PASSWORD = "pw-Tr0ub4dor&3-never-print"


def needles(secret: bytes) -> list[str]:
    """Every 4-byte window of a secret, in lower and upper hex and as a Python bytes literal."""
    out: list[str] = []
    for i in range(len(secret) - 3):
        w = secret[i : i + 4]
        out += [w.hex(), w.hex().upper(), repr(w)[2:-1], str(list(w))[1:-1]]
    return out


def assert_clean(texts: list[str], secrets: dict[str, bytes]) -> None:
    assert texts
    for text in texts:
        for name, secret in secrets.items():
            for n in needles(secret):
                assert n not in text, f"{name} leaked ({n}) in {text!r}"


def test_the_detector_finds_secrets() -> None:
    secret = bytes(range(7, 39))
    for text in (secret.hex(), secret[3:9].hex().upper(), repr(secret[4:10]), str(list(secret))):
        with pytest.raises(AssertionError):
            assert_clean([text], {"probe": secret})


def test_keystore_reprs_and_errors_hold_no_key_bytes(tmp_path: Path) -> None:
    me = mqseal.Identity.generate()
    peer = mqseal.Identity.generate()
    store = mqseal.Store.create(tmp_path / "s", "me", me)
    store.trust("peer", peer.public, sender=True, issuer=True)
    held = store.create_key("plant/#", now=1000)
    secrets = {"seed": me.seed(), "tree key": held.key.secret_bytes()}
    topic_key = held.key.topic_key("plant/7/temp")
    secrets["topic key"] = topic_key.secret_bytes()
    secrets["sender key"] = topic_key.sender_key("signed", me.public.ed25519)
    outgoing = store.issue_grant("plant/7/#", "peer")
    grant = mqseal.Grant.issue(me, me.public, held.key)
    accepted = store.accept_grant(grant, now=1000)
    update = store.add_key(held.key, now=1000)
    rotation = store.rotate("plant/#", now=2000)
    secrets["rotated key"] = [k for k in store.held_keys() if k.epoch == 2][0].key.secret_bytes()
    objects: list[object] = [store, held, outgoing, accepted, update, rotation,
                             *store.held_keys(), *store.issued(), *store.trusted()]
    with store.sealer() as sealer, store.opener() as opener:
        sealed = sealer.seal("plant/7/temp", b"x")
        opened = opener.open("plant/7/temp", sealed)
        header = mqseal.inspect(sealed)
        secrets["message key"] = topic_key.message_key("signed", me.public.ed25519, header.salt)
        objects += [sealer, opener, opened, header]
        texts = [repr(o) for o in objects] + [str(o) for o in objects]
    objects += [sealer, opener]  # closed ones too
    texts += [repr(sealer), repr(opener)]
    assert any("HeldKey(filter='plant/#'" in t for t in texts), texts

    # Errors about damaged secret files name the file, never its content.
    key_path = store.dir / "identity.key"
    good = key_path.read_text()
    seed_hex = me.seed().hex()
    errors: list[mqseal.Error] = []
    for damage in (good.replace(seed_hex, "zz" + seed_hex[2:]), good.replace(seed_hex, seed_hex[:62])):
        key_path.write_text(damage)
        with pytest.raises(mqseal.CorruptFileError) as corrupt:
            mqseal.Store.open(store.dir)
        errors.append(corrupt.value)
    key_path.write_text(good)
    keys_path = store.dir / "keys"
    keys_text = keys_path.read_text()
    key_hex = held.key.secret_bytes().hex()
    assert key_hex in keys_text
    keys_path.write_text(keys_text.replace(key_hex, "zz" + key_hex[2:]))
    with pytest.raises(mqseal.CorruptFileError) as corrupt:
        store.held_keys()
    errors.append(corrupt.value)
    assert all(e.args and str(store.dir) in str(e) for e in errors), errors
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    assert_clean(texts, secrets)


def test_secret_files_are_private_and_loose_ones_refused(tmp_path: Path) -> None:
    store = mqseal.Store.create(tmp_path / "s", "me")
    store.create_key("plant/#", now=1000)
    with store.sealer() as sealer, store.opener() as opener:
        opener.open("plant/1", sealer.seal("plant/1", b"x"))
    secret_files = ["identity.key", "keys", "state/seq", "state/replay.snap", "state/replay.log"]
    for name in secret_files:
        assert stat.S_IMODE((store.dir / name).stat().st_mode) == 0o600, name
    saved = tmp_path / "saved.key"
    mqseal.Identity.generate().save(saved, "saved")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    def use(name: str) -> None:
        s = mqseal.Store.open(store.dir)
        if name == "keys":
            s.held_keys()
        elif name == "state/seq":
            s.sealer().close()
        elif name.startswith("state/replay"):
            s.opener().close()

    for name in secret_files:
        path = store.dir / name
        for mode in (0o644, 0o640, 0o604):
            path.chmod(mode)
            with pytest.raises(mqseal.InsecurePermissionsError, match="chmod 600") as loose:
                use(name)
            assert str(path) in str(loose.value) and f"{mode:04o}" in str(loose.value)
        path.chmod(0o600)
        use(name)


def test_paho_wrapper_repr_holds_no_password() -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hygiene")
    client.username_pw_set("alice", PASSWORD)
    me = mqseal.Identity.generate()
    key = mqseal.TreeKey.generate("plant/#", 1)
    sealer = mqseal.Sealer(me, start=0)
    sealer.add_key(key)
    wrapped = SealedClient(client, sealer=sealer, opener=mqseal.Opener())
    for text in (repr(wrapped), str(wrapped)):
        assert PASSWORD not in text, text
        assert key.secret_bytes().hex()[:8] not in text and me.seed().hex()[:8] not in text
