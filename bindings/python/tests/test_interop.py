"""Interop with Rust. The core used directly from Rust (bindings/python/examples/interop.rs): Rust
seals and issues a grant, Python opens and accepts; Python seals and issues, Rust opens and
accepts; both sides use fresh random identities and keys each run, and each refuses the other's
tampered messages with the expected error. The `mqseal` CLI over a real Mosquitto: it opens what
Python sealed and Python opens what it sealed, with keystores created from Python."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest

import paho.mqtt.client as mqtt

import mqseal
from conftest import Broker
from mqseal.paho import OpenedMessage, SealedClient

Interop = Callable[[str, Path], str]

# Timestamps: "now" (the default), an explicit time, or None (none).
CASES: list[tuple[str, bytes, bool, int | Literal["now"] | None, str]] = [
    ("plant/7/temp", b"21.5", False, "now", "signed"),
    ("plant/7/temp", b"21.6", False, 1_790_000_000, "signed"),
    ("plant/7/state", b'{"on": true}', True, None, "signed"),
    ("plant/8/caf\u00e9", b"", False, None, "signed"),
    ("plant/9/bulk", b"\xa5" * 3000, False, None, "group-mac"),
]


def check_bundle(bundle: dict[str, Any]) -> tuple[int, int]:
    """The Python twin of `interop check`."""
    recipient = mqseal.Identity.from_seed(bytes.fromhex(bundle["recipient_seed"]))
    issuer = mqseal.PublicIdentity.from_bytes(bytes.fromhex(bundle["issuer_public"]))
    sender = mqseal.PublicIdentity.from_bytes(bytes.fromhex(bundle["sender_public"]))
    key = mqseal.Grant.from_bytes(bytes.fromhex(bundle["grant"])).accept(recipient, [issuer])
    opener = mqseal.Opener()
    opener.trust_group_mac_sender(sender, "#")
    opener.add_key(key)
    for m in bundle["messages"]:
        opened = opener.open(m["topic"], bytes.fromhex(m["sealed"]), retained=m["retain"])
        assert opened.payload == bytes.fromhex(m["payload"]), m["topic"]
        assert opened.sender == sender
        assert opened.seq == m["seq"]
        assert opened.retain == m["retain"]
        assert opened.timestamp == m["timestamp"]
        assert opened.profile == m["profile"]
    for t in bundle["tampered"]:
        with pytest.raises(mqseal.Error) as caught:
            opener.open(t["topic"], bytes.fromhex(t["sealed"]))
        assert caught.value.name == t["error"], t
    return len(bundle["messages"]), len(bundle["tampered"])


def make_bundle() -> dict[str, Any]:
    """The Python twin of `interop make`."""
    sender = mqseal.Identity.generate()
    issuer = mqseal.Identity.generate()
    recipient = mqseal.Identity.generate()
    key = mqseal.TreeKey.generate("plant/#", 3)
    grant = mqseal.Grant.issue(issuer, recipient.public, key)
    signed = mqseal.Sealer(sender, "signed", start=0)
    group = mqseal.Sealer(sender, "group-mac", start=1000)
    signed.add_key(key)
    group.add_key(key)
    messages = []
    for topic, payload, retain, timestamp, profile in CASES:
        sealer = signed if profile == "signed" else group
        seq = sealer.next_seq
        sealed = sealer.seal(topic, payload, retain=retain, timestamp=timestamp)
        header = mqseal.inspect(sealed)
        if timestamp == "now":
            assert header.timestamp is not None
        else:
            assert header.timestamp == timestamp
        messages.append({"topic": topic, "payload": payload.hex(), "retain": retain,
                         "timestamp": header.timestamp, "profile": profile, "seq": seq,
                         "sealed": sealed.hex()})
    first = bytes.fromhex(messages[0]["sealed"])
    flipped = first[:-1] + bytes([first[-1] ^ 1])
    tampered = [
        {"topic": "plant/7/temp", "sealed": first.hex(), "error": "replay"},
        # Moved to another topic: its key id names no key there (spec section 7.1 step 4).
        {"topic": "plant/7/other", "sealed": first.hex(), "error": "key_not_found"},
        # Its number was accepted: the replay pre-check refuses it before any signature work.
        {"topic": "plant/7/temp", "sealed": flipped.hex(), "error": "replay"},
        {"topic": "plant/7/temp", "sealed": first[:10].hex(), "error": "malformed"},
    ]
    return {
        "producer": "python",
        "sender_public": sender.public.to_bytes().hex(),
        "issuer_public": issuer.public.to_bytes().hex(),
        "recipient_seed": recipient.seed().hex(),
        "grant": grant.to_bytes().hex(),
        "messages": messages,
        "tampered": tampered,
    }


def test_rust_sealed_messages_open_in_python(rust_interop: Interop, tmp_path: Path) -> None:
    path = tmp_path / "from-rust.json"
    rust_interop("make", path)
    bundle = json.loads(path.read_text())
    assert bundle["producer"] == "rust"
    assert check_bundle(bundle) == (5, 4)


def test_python_sealed_messages_open_in_rust(rust_interop: Interop, tmp_path: Path) -> None:
    path = tmp_path / "from-python.json"
    path.write_text(json.dumps(make_bundle()))
    out = rust_interop("check", path)
    assert '5 opened, 4 refused as expected (bundle from "python")' in out


def test_rust_checker_refuses_a_wrong_expectation(rust_interop: Interop, tmp_path: Path) -> None:
    """The Rust checker really compares: a bundle claiming another payload fails it."""
    bundle = make_bundle()
    bundle["messages"][0]["payload"] = b"22.0".hex()
    path = tmp_path / "lying.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(AssertionError, match="payload"):
        rust_interop("check", path)


def test_python_round_trip_of_its_own_bundle() -> None:
    assert check_bundle(make_bundle()) == (5, 4)


def test_cli_opens_python_and_python_opens_cli(mosquitto: Broker, mqseal_cli: Path,
                                               tmp_path: Path) -> None:
    admin = mqseal.Store.create(tmp_path / "admin", "admin")
    sensor = mqseal.Store.create(tmp_path / "sensor", "sensor-7")
    board = mqseal.Store.create(tmp_path / "board", "dashboard")
    for member in (sensor, board):
        admin.trust(member.name, member.public)
        member.trust("admin", admin.public, sender=False, issuer=True)
    board.trust_line(sensor.public_line)
    admin.create_key("plant/#")
    for member in (sensor, board):
        grant = admin.issue_grant("plant/#", member.name)
        assert member.accept_grant_message(grant.topic, grant.payload) is not None
    broker = ["-h", mosquitto.host, "-p", str(mosquitto.port)]
    topic = f"plant/interop-{tmp_path.name[-8:]}"

    def cli(*args: str) -> str:
        done = subprocess.run([str(mqseal_cli), *args], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    plain.connect(mosquitto.host, mosquitto.port)
    plain.loop_start()
    try:
        # Python seals (retained, so the CLI gets it when it subscribes); the CLI opens it.
        with sensor.sealer() as sealer:
            sealed = sealer.seal(f"{topic}/py", b"sealed by python", retain=True)
        plain.publish(f"{topic}/py", sealed, qos=1, retain=True).wait_for_publish(30)
        out = cli("sub", "--store", str(board.dir), *broker, "-t", f"{topic}/py", "-v",
                  "--show-sender", "-C", "1")
        assert out == f"{topic}/py [sensor-7 #0] sealed by python\n"

        # The CLI seals with the same keystore (its sequence numbers continue); Python opens.
        cli("pub", "--store", str(sensor.dir), *broker, "-t", f"{topic}/cli",
            "-m", "sealed by rust", "-r", "-q", "1")
        got: list[OpenedMessage] = []
        subscribed_and_got = threading.Event()
        with board.opener() as opener:
            client = SealedClient(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), opener=opener)
            client.on_message = lambda c, u, m: (got.append(m), subscribed_and_got.set())
            client.connect(mosquitto.host, mosquitto.port)
            client.loop_start()
            client.subscribe(f"{topic}/cli", qos=1)
            assert subscribed_and_got.wait(30), "the CLI's retained message did not arrive"
            client.disconnect()
            client.loop_stop()
        [m] = got
        assert (m.payload, m.sender, m.retain) == (b"sealed by rust", sensor.public, True)
        assert m.seq >= 4096  # the CLI resumed above the reservation Python's sealer left
        assert mqseal.inspect(m.raw.payload).seq == m.seq
    finally:
        for t in (f"{topic}/py", f"{topic}/cli"):
            plain.publish(t, b"", qos=1, retain=True).wait_for_publish(30)
        plain.disconnect()
        plain.loop_stop()
