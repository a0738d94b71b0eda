"""Identity files in the keystore formats of mqseal-store (identity.key / identity.pub /
mqseal-pub1: tokens), and the keystore error classes."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

import mqseal


def test_identity_key_file_round_trip(tmp_path: Path) -> None:
    me = mqseal.Identity.generate()
    path = tmp_path / "identity.key"
    me.save(path, "sensor-7")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "# name: sensor-7" in text
    assert f"# fingerprint: {me.fingerprint}" in text
    assert f"mqseal-secret1:{me.seed().hex()}" in text
    assert mqseal.Identity.load(path) == me
    assert mqseal.Identity.load(str(path)) == me
    with pytest.raises(mqseal.StoreIoError) as exists:
        me.save(path, "again")  # never replaces a key file
    assert isinstance(exists.value, OSError)
    assert exists.value.errno is not None and exists.value.filename == str(path)


def test_public_file_and_token(tmp_path: Path) -> None:
    me = mqseal.Identity.generate()
    pub = tmp_path / "identity.pub"
    me.save_public(pub, "sensor-7")
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert pub.read_text() == f"sensor-7 {me.public.token}\n"
    assert mqseal.PublicIdentity.load(pub) == me.public
    token = me.public.token
    assert token == "mqseal-pub1:" + me.public.to_bytes().hex()
    assert mqseal.PublicIdentity.from_token(token) == me.public
    assert mqseal.PublicIdentity.from_token(token.upper().replace("MQSEAL-PUB1:", "mqseal-pub1:")) \
        == me.public
    with pytest.raises(mqseal.MalformedError, match="mqseal-pub1:"):
        mqseal.PublicIdentity.from_token(me.public.to_bytes().hex())
    with pytest.raises(mqseal.MalformedError, match="128 hex"):
        mqseal.PublicIdentity.from_token(token[:-2])
    with pytest.raises(mqseal.InvalidKeyError):
        mqseal.PublicIdentity.from_token("mqseal-pub1:" + "00" * 64)


def test_key_files_from_the_rust_formats(tmp_path: Path) -> None:
    """Files written by mqseal-store (these exact lines) load here, comments and all."""
    seed = bytes(range(32))
    me = mqseal.Identity.from_seed(seed)
    path = tmp_path / "k"
    path.write_text("# a comment\n\n  mqseal-secret1:" + seed.hex().upper() + "  \n")
    path.chmod(0o600)
    assert mqseal.Identity.load(path) == me
    pub = tmp_path / "p"
    pub.write_text(f"# comment\nsensor {me.public.token}\n")
    assert mqseal.PublicIdentity.load(pub) == me.public


def test_refusals(tmp_path: Path) -> None:
    me = mqseal.Identity.generate()
    path = tmp_path / "identity.key"
    me.save(path, "me")
    path.chmod(0o644)
    with pytest.raises(mqseal.InsecurePermissionsError, match="chmod 600") as loose:
        mqseal.Identity.load(path)
    assert (loose.value.code, loose.value.name) == (102, "permissions")
    assert isinstance(loose.value, mqseal.StoreError)

    path.chmod(0o600)
    full = path.read_text()
    for cut in (full[: full.index("mqseal-secret1:") + 30], "", full + full.splitlines()[-1]):
        path.write_text(cut)
        with pytest.raises(mqseal.CorruptFileError) as corrupt:
            mqseal.Identity.load(path)
        assert corrupt.value.code == 103
        assert str(path) in str(corrupt.value)
        assert me.seed().hex()[:16] not in str(corrupt.value)

    with pytest.raises(mqseal.StoreIoError) as missing:
        mqseal.Identity.load(tmp_path / "nope")
    assert missing.value.errno == 2  # ENOENT
    with pytest.raises(OSError):
        mqseal.PublicIdentity.load(tmp_path / "nope")
    with pytest.raises(mqseal.InvalidNameError):
        me.save(tmp_path / "x.key", "no spaces")
    with pytest.raises(mqseal.InvalidNameError):
        me.save_public(tmp_path / "x.pub", "a\nb")
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "x.pub").exists()


def test_every_store_code_has_its_own_class() -> None:
    codes = mqseal.store_error_codes()
    assert codes and all(code >= 101 for code, _ in codes)
    classes = set()
    for code, name in codes:
        cls = mqseal.error_for_code(code)
        assert issubclass(cls, mqseal.StoreError) and cls is not mqseal.StoreError, name
        assert cls.error_name == name
        classes.add(cls)
        err = mqseal._errors._from_store(code, f"problem {code}", 13, "/f")
        assert (type(err), err.code, err.name, err.message) == (cls, code, name, f"problem {code}")
        again = pickle.loads(pickle.dumps(err))
        assert (type(again), again.code, again.name, again.message) == (
            cls, code, name, f"problem {code}")
    assert len(classes) == len(codes)
    io_error = mqseal._errors._from_store(101, "read failed", 13, "/f")
    assert isinstance(io_error, PermissionError) is False and isinstance(io_error, OSError)
    assert (io_error.errno, io_error.filename) == (13, "/f")
    assert pickle.loads(pickle.dumps(io_error)).errno == 13


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file regardless of its mode")
def test_unreadable_file_is_an_os_error(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    mqseal.Identity.generate().save(path, "me")
    path.chmod(0)
    with pytest.raises(mqseal.StoreIoError) as denied:
        mqseal.Identity.load(path)
    assert denied.value.errno == 13
