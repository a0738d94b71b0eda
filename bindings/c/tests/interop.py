#!/usr/bin/env python3
"""Interop between the C API and Python, run by scripts/checks/60-c.sh with the C test program.

  interop.py seal OUT   seal messages in Python, one line each, for `test_mqseal --interop-open`
  interop.py open IN    open the lines written by `test_mqseal --interop-seal`

Two Python implementations take part: the independent reference implementation written from the
spec (tests/spec-conformance/mqseal_ref.py, shares no code with the Rust core; needs the
`cryptography` package), and the Python binding (`import mqseal`, bindings/python) when it is
built. Line format: "source topic profile(0 signed, 1 group-mac) retain(0/1) payload_hex|- sealed_hex".
Identities and key are fixed and shared with bindings/c/tests/test_mqseal.c: Python seals as the
seed 0x11 * 32, C as 0x22 * 32, under the tree key "interop/#", epoch 3, secret 0x33 * 32.

Protocol v2 (spec/mqseal-v2.md): every message carries a fresh random salt, so the sealed bytes
differ from run to run; both sides seal with one counter per identity, starting explicitly.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "spec-conformance"))
import mqseal_ref as ref  # noqa: E402

PYTHON_SEED = bytes([0x11]) * 32
C_SEED = bytes([0x22]) * 32
KEY = ("interop/#", 3, bytes([0x33]) * 32)
# (payload, retain, timestamp, profile); timestamp "now": the sender's clock (the v2 default),
# None: no timestamp, an int: that time.
CASES = [
    (b"21.5", False, "now", ref.SIGNED),
    (b"", False, None, ref.SIGNED),
    (b'{"on": true}', True, 1_790_000_000, ref.SIGNED),
    (bytes(range(256)) * 4, False, "now", ref.SIGNED),
    (b"caf\xc3\xa9", True, None, ref.GROUP_MAC),
    (b"\xa5" * 1500, False, 1_790_000_001, ref.GROUP_MAC),
    (b"late", False, "now", ref.GROUP_MAC),
]


def binding():
    """The Python binding, if it is installed (the wheel 50-python.sh builds) or built in place
    (bindings/python/python/mqseal/_native*.so, by `maturin develop`)."""
    for attempt in ("installed", "in place"):
        if attempt == "in place":
            sys.path.insert(0, str(ROOT / "bindings" / "python" / "python"))
            sys.modules.pop("mqseal", None)
        try:
            import mqseal  # noqa: PLC0415

            mqseal.Sealer  # noqa: B018
            return mqseal
        except (ImportError, AttributeError):
            continue
    return None


def line(source: str, topic: str, profile: int, retain: bool, payload: bytes, sealed: bytes) -> str:
    return "%s %s %d %d %s %s\n" % (
        source, topic, profile, int(retain), payload.hex() or "-", sealed.hex())


def seal(path: Path) -> None:
    me = ref.Identity(PYTHON_SEED)
    key = ref.TreeKey(*KEY)
    lines = []
    # The reference's sealer: one counter for both profiles, salts from os.urandom.
    sealer = ref.Sealer(me, [key], next_seq=0)
    for i, (payload, retain, ts, profile) in enumerate(CASES):
        topic = "interop/ref/%d" % (i % 3)
        sealed = sealer.seal(profile, topic, payload, retain=retain,
                             timestamp=ref.NOW if ts == "now" else ts)
        lines.append(line("python-reference", topic, profile, retain, payload, sealed))
    used_binding = binding()
    if used_binding is not None:
        m = used_binding
        identity = m.Identity.from_seed(PYTHON_SEED)
        # One identity, one counter: the binding's numbers follow the reference's.
        try:
            sealers = {"signed": m.Sealer(identity, "signed", start=100),
                       "group-mac": m.Sealer(identity, "group-mac", start=200)}
        except TypeError as e:
            raise SystemExit("interop: the Python binding found is not v2 (Sealer takes no start=):"
                             " rebuild it (scripts/checks/50-python.sh): %s" % e) from None
        for s in sealers.values():
            s.add_key(m.TreeKey.from_secret(*KEY))
        for i, (payload, retain, ts, profile) in enumerate(CASES):
            topic = "interop/pyo3/%d" % (i % 3)
            name = "signed" if profile == ref.SIGNED else "group-mac"
            sealed = sealers[name].seal(topic, payload, retain=retain, timestamp=ts)
            lines.append(line("python-binding", topic, profile, retain, payload, sealed))
    path.write_text("".join(lines))
    print("interop: Python sealed %d messages (reference implementation: %d, Python binding: %s)"
          % (len(lines), len(CASES),
             len(CASES) if used_binding is not None else "not built, skipped"))


def open_(path: Path) -> int:
    c_public = ref.Identity(C_SEED).public
    opener = ref.Opener([c_public], [ref.TreeKey(*KEY)])
    opener.trust_group_mac(c_public, "#")
    m = binding()
    b_opener = None
    if m is not None:
        b_opener = m.Opener()
        b_opener.trust_group_mac_sender(m.PublicIdentity.from_bytes(c_public.raw), "#")
        b_opener.add_key(m.TreeKey.from_secret(*KEY))
    passed = failed = 0
    for text in path.read_text().splitlines():
        source, topic, profile, retain, payload_hex, sealed_hex = text.split()
        payload = b"" if payload_hex == "-" else bytes.fromhex(payload_hex)
        sealed, retain = bytes.fromhex(sealed_hex), retain == "1"
        checks = [("python-reference", lambda: opener.open(topic, sealed, retained=retain))]
        if b_opener is not None:
            checks.append(("python-binding", lambda: b_opener.open(topic, sealed, retained=retain)))
        for who, do in checks:
            try:
                opened = do()
                ok = opened.payload == payload and (
                    bytes(opened.sender.raw if who == "python-reference"
                          else opened.sender.to_bytes()) == c_public.raw)
            except Exception as e:  # noqa: BLE001 - report any failure as such
                print("FAIL %s could not open the %s-sealed message on %s: %r"
                      % (who, source, topic, e))
                ok = False
            passed += ok
            failed += not ok
    print("interop (C-sealed, opened in Python: reference%s): %d passed, %d failed"
          % (" and binding" if b_opener is not None else " only, binding not built",
             passed, failed))
    return 1 if failed or not passed else 0


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("seal", "open"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "seal":
        seal(Path(sys.argv[2]))
        return 0
    return open_(Path(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
