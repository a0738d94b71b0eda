"""mqseal.Store: the keystore of the Rust mqseal-store crate from Python -- trusted peers, keys,
in-band grants, rotation, crash-safe sequence numbers and persisted replay windows."""

from __future__ import annotations

import os
import signal
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import mqseal


@pytest.fixture
def site(tmp_path: Path) -> dict[str, mqseal.Store]:
    """An administrator, a sensor and a dashboard, each with its store, trusting each other."""
    admin = mqseal.Store.create(tmp_path / "admin", "admin")
    sensor = mqseal.Store.create(tmp_path / "sensor", "sensor-7")
    dashboard = mqseal.Store.create(tmp_path / "dashboard", "dashboard")
    admin.trust("sensor-7", sensor.public)
    admin.trust("dashboard", dashboard.public, sender=False)
    for member in (sensor, dashboard):
        member.trust("admin", admin.public, sender=False, issuer=True)
    dashboard.trust_line(sensor.public_line)
    admin.create_key("plant/#", now=1000)
    for member, name in ((sensor, "sensor-7"), (dashboard, "dashboard")):
        grant = admin.issue_grant("plant/#", name)
        assert grant.topic.startswith(member.grant_subscription[:-1])
        assert grant.retain
        accepted = member.accept_grant_message(grant.topic, grant.payload, now=1000)
        assert accepted is not None and accepted.added and accepted.issuer_name == "admin"
    return {"admin": admin, "sensor": sensor, "dashboard": dashboard}


def test_layout_and_identity_files(tmp_path: Path) -> None:
    me = mqseal.Identity.generate()
    store = mqseal.Store.create(tmp_path / "s", "me", me)
    assert store.identity == me and store.name == "me" and store.fingerprint == me.fingerprint
    assert store.dir == tmp_path / "s"
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert mqseal.Identity.load(store.dir / "identity.key") == me
    assert mqseal.PublicIdentity.load(store.dir / "identity.pub") == me.public
    assert store.public_line == f"me {me.public.token}"
    assert mqseal.Store.open(tmp_path / "s").identity == me
    with pytest.raises(mqseal.StoreExistsError):
        mqseal.Store.create(tmp_path / "s", "again")
    with pytest.raises(mqseal.InvalidGrantPrefixError):
        mqseal.Store.open(tmp_path / "s", grant_prefix="a/+")
    custom = mqseal.Store.open(tmp_path / "s", grant_prefix="site/keys")
    assert custom.grant_subscription == f"site/keys/{me.fingerprint}/+"
    assert "me" in repr(store) and me.seed().hex()[:16] not in repr(store)


def test_trusted_peers(site: dict[str, mqseal.Store]) -> None:
    dashboard = site["dashboard"]
    peers = {p.name: p for p in dashboard.trusted()}
    assert set(peers) == {"admin", "sensor-7"}
    assert (peers["admin"].sender, peers["admin"].issuer) == (False, True)
    assert peers["sensor-7"].public == site["sensor"].public
    assert peers["sensor-7"].line.startswith("sensor-7 mqseal-pub1:")
    assert dashboard.peer("admin").fingerprint == site["admin"].fingerprint
    with pytest.raises(mqseal.UnknownPeerError):
        dashboard.peer("nobody")
    with pytest.raises(mqseal.DuplicatePeerError):
        dashboard.trust("sensor-again", site["sensor"].public)
    with pytest.raises(mqseal.InvalidNameError):
        dashboard.trust("bad name", mqseal.Identity.generate().public)
    updated = dashboard.set_roles("sensor-7", sender=True, issuer=True)
    assert updated.issuer
    assert dashboard.untrust("sensor-7").name == "sensor-7"
    assert [p.name for p in dashboard.trusted()] == ["admin"]


def test_files_that_confer_trust_must_not_be_writable_by_others(site: dict[str, mqseal.Store]) -> None:
    """``trusted`` decides who may send and issue keys: group/others-writable is refused (117)."""
    dashboard = site["dashboard"]
    trusted = dashboard.dir / "trusted"
    trusted.chmod(0o666)
    with pytest.raises(mqseal.StoreInsecureError) as err:
        dashboard.trusted()
    assert err.value.code == 117 and "chmod go-w" in str(err.value)
    assert mqseal.error_for_code(117) is mqseal.StoreInsecureError
    trusted.chmod(0o644)
    assert len(dashboard.trusted()) == 2
    dashboard.dir.chmod(0o777)
    with pytest.raises(mqseal.StoreInsecureError):
        mqseal.Store.open(dashboard.dir)
    dashboard.dir.chmod(0o700)
    assert mqseal.Store.open(dashboard.dir).name == "dashboard"


def test_grants_seal_open_and_restart(site: dict[str, mqseal.Store]) -> None:
    sensor, dashboard = site["sensor"], site["dashboard"]
    [held] = dashboard.held_keys()
    assert (held.filter, held.epoch, held.issuer) == ("plant/#", 1, site["admin"].fingerprint)
    assert held.not_after is None and held.is_live()
    with sensor.sealer() as sealer, dashboard.opener() as opener:
        messages = [sealer.seal("plant/7/temp", str(i).encode()) for i in range(3)]
        assert [opener.open("plant/7/temp", m).payload for m in messages] == [b"0", b"1", b"2"]
        reserved = sealer.reserved
        assert sealer.next_seq == 3 and reserved == sensor.reserved_sequence()
        assert opener.window_count == 1
    assert sealer.closed and opener.closed
    with pytest.raises(ValueError, match="closed"):
        sealer.seal("plant/7/temp", b"x")

    # After a restart: numbers continue above the durable reservation, replays stay refused.
    with sensor.sealer() as sealer, dashboard.opener() as opener:
        assert sealer.next_seq == reserved
        with pytest.raises(mqseal.ReplayError):
            opener.open("plant/7/temp", messages[1])
        assert opener.open("plant/7/temp", sealer.seal("plant/7/temp", b"3")).seq == reserved


def test_persistent_opener_restores_the_high_water_mark(site: dict[str, mqseal.Store]) -> None:
    sensor, dashboard = site["sensor"], site["dashboard"]
    with sensor.sealer() as sealer:
        historic = sealer.seal("plant/7/old", b"historic")  # never delivered
        sealer_start = sealer.next_seq
    with sensor.sealer() as sealer:  # a restart: 4096 numbers later
        assert sealer.next_seq >= sealer_start + 2048
        latest = sealer.seal("plant/7/temp", b"now")
    with dashboard.opener() as opener:
        assert opener.high_water_mark(sensor.public) is None
        assert opener.open("plant/7/temp", latest).payload == b"now"
        mark = opener.high_water_mark(sensor.fingerprint)
        assert mark == mqseal.inspect(latest).seq
    with dashboard.opener() as opener:  # recomputed from the persisted windows
        assert opener.high_water_mark(sensor.public) == mark
        with pytest.raises(mqseal.TooOldError):  # a broker replaying history on a new topic
            opener.open("plant/7/old", historic)
        assert opener.window_count == 1


def fork_and_wait(child: Callable[[], int]) -> int:
    """Runs ``child`` in a forked process (which exits with its result, skipping every cleanup
    of the parent's state) and returns that exit code."""
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads (earlier tests' paho loops
        # may linger); the child only runs `child` and leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child
        code = 99
        try:
            code = child()
        finally:
            os._exit(code)
    # Bounded wait: a child that hangs (e.g. a lock held by another thread at fork time) fails
    # the test instead of hanging the run.
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child did not finish within 60 s")
        time.sleep(0.01)


def test_persistent_sealer_refuses_to_seal_after_a_fork(site: dict[str, mqseal.Store]) -> None:
    """A forked child shares the parent's counter: its seal raises StoreForkedError (code 116)
    and spends nothing, while the parent keeps sealing; the child cannot open a second sealer
    while the parent holds the store."""
    sensor, dashboard = site["sensor"], site["dashboard"]
    with sensor.sealer() as sealer, dashboard.opener() as opener:
        assert opener.open("plant/7/temp", sealer.seal("plant/7/temp", b"before")).seq == 0
        parent = os.getpid()

        def child() -> int:
            try:
                sealer.seal("plant/7/temp", b"from the child")
                return 1  # sealed: the parent's next numbers would be used twice
            except mqseal.StoreForkedError as e:
                if (e.code, e.name, type(e).error_name) != (116, "forked", "forked"):
                    return 2
                if not isinstance(e, mqseal.StoreError):
                    return 3
                if f"process {parent}" not in str(e) or f"process {os.getpid()}" not in str(e):
                    return 4
            if sealer.next_seq != 1:
                return 5
            try:
                mqseal.Store.open(sensor.dir).sealer()
                return 6
            except mqseal.StoreLockedError:
                pass
            return 0

        assert fork_and_wait(child) == 0
        # The parent is unaffected: its numbers continue where they were, and they open.
        for i, payload in enumerate([b"after", b"again"], start=1):
            sealed = sealer.seal("plant/7/temp", payload)
            opened = opener.open("plant/7/temp", sealed)
            assert (opened.payload, opened.seq) == (payload, i)
    assert mqseal.error_for_code(116) is mqseal.StoreForkedError
    assert (116, "forked") in mqseal.store_error_codes()


def test_fork_check_really_runs_in_the_child() -> None:
    """The helper itself: a child's result and a crash both reach the parent."""
    assert fork_and_wait(lambda: 7) == 7
    assert fork_and_wait(lambda: 1 // 0) == 99


def test_one_sealer_and_one_opener_per_store(site: dict[str, mqseal.Store]) -> None:
    sensor = site["sensor"]
    first = sensor.sealer()
    with pytest.raises(mqseal.StoreLockedError) as locked:
        sensor.sealer()
    assert locked.value.code == 105
    with pytest.raises(mqseal.StoreLockedError):
        mqseal.Store.open(sensor.dir).sealer("group-mac")
    opener = sensor.opener()  # opening is a separate lock
    first.close()
    second = sensor.sealer("group-mac")
    assert second.profile == "group-mac" and second.public == sensor.public
    second.close()
    opener.close()


def test_persistent_sealer_and_opener_shared_by_threads(site: dict[str, mqseal.Store]) -> None:
    """They release the GIL while writing to disk and serialise their callers: numbers stay
    unique and every message opens exactly once."""
    import threading

    out: list[bytes] = []
    lock = threading.Lock()
    with site["sensor"].sealer() as sealer, site["dashboard"].opener() as opener:
        def seal() -> None:
            for _ in range(50):
                sealed = sealer.seal("plant/7/temp", b"x")
                with lock:
                    out.append(sealed)

        threads = [threading.Thread(target=seal) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(mqseal.inspect(m).seq for m in out) == list(range(200))
        opened: list[int] = []

        def open_all(part: list[bytes]) -> None:
            for m in part:
                o = opener.open("plant/7/temp", m)
                with lock:
                    opened.append(o.seq)

        threads = [threading.Thread(target=open_all, args=(out[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(opened) == list(range(200))


def test_rotation_revokes_a_member(site: dict[str, mqseal.Store]) -> None:
    admin, sensor, dashboard = site["admin"], site["sensor"], site["dashboard"]
    assert {g.recipient_name for g in admin.members("plant/#")} == {"sensor-7", "dashboard"}
    rotation = admin.rotate("plant/#", exclude=[dashboard.fingerprint], now=2000)
    assert (rotation.epoch, rotation.excluded) == (2, [dashboard.fingerprint])
    assert [g.recipient_name for g in rotation.grants] == ["sensor-7"]
    [grant] = rotation.grants
    accepted = sensor.accept_grant_message(grant.topic, grant.payload, now=2000)
    assert accepted is not None and accepted.key.epoch == 2
    assert accepted.retired and accepted.retired[0][0] == 1
    assert [k.epoch for k in sensor.sealing_keys()] == [2]
    assert sensor.accept_grant_message(grant.topic, b"", now=2000) is None

    with sensor.sealer() as sealer, dashboard.opener() as opener:
        sealer.set_keys(sensor.sealing_keys())
        with pytest.raises(mqseal.KeyNotFound):  # the revoked dashboard has no epoch 2
            opener.open("plant/7/temp", sealer.seal("plant/7/temp", b"secret"))
    with pytest.raises(mqseal.GrantTopicMismatchError):
        sensor.accept_grant_message(sensor.grant_subscription[:-1] + "0" * 16, grant.payload)
    with pytest.raises(mqseal.GrantNotForUsError):
        dashboard.accept_grant(mqseal.Grant.from_bytes(grant.payload))
    assert [g.epoch for g in admin.reissue("plant/#")] == [2]
    assert {(g.granted_filter, g.epoch) for g in admin.issued()} >= {("plant/#", 1), ("plant/#", 2)}


def test_rotation_ahead_of_time_and_key_lifetimes(site: dict[str, mqseal.Store]) -> None:
    """keystore.md 11: the next epoch granted ahead of time takes over at its not_before with no
    new delivery; a key past its not_after is refused (KeyExpiredError), not used forever."""
    admin, sensor, dashboard = site["admin"], site["sensor"], site["dashboard"]
    switch, end = 5_000, 9_000
    rotation = admin.rotate("plant/#", now=2_000, not_before=switch, not_after=end)
    assert (rotation.epoch, rotation.not_before, rotation.not_after) == (2, switch, end)
    assert rotation.retired == [(1, switch + 86_400)]  # retired from the switch on
    for grant in rotation.grants:
        for member in (sensor, dashboard):
            if grant.topic.startswith(member.grant_subscription[:-1]):
                member.accept_grant_message(grant.topic, grant.payload, now=2_100)
    e2 = next(k for k in sensor.held_keys() if k.epoch == 2)
    assert (e2.key.not_before, e2.key.not_after, e2.not_after) == (switch, end, None)
    assert sorted(k.epoch for k in sensor.sealing_keys(now=switch - 1)) == [1, 2]
    assert [k.epoch for k in sensor.sealing_keys(now=switch)] == [2]
    with sensor.sealer() as sealer, dashboard.opener() as opener:
        sealer.set_keys(sensor.sealing_keys(now=switch - 1))  # loaded once, before the switch
        before = sealer.seal("plant/7/temp", b"e1", timestamp=switch - 1)
        after = sealer.seal("plant/7/temp", b"e2", timestamp=switch)
        assert [mqseal.inspect(m).epoch for m in (before, after)] == [1, 2]
        assert opener.open("plant/7/temp", after, now=switch).payload == b"e2"
        with pytest.raises(mqseal.KeyExpiredError):
            sealer.seal("plant/7/temp", b"late", timestamp=end + 1)
        with pytest.raises(mqseal.KeyExpiredError):
            opener.open("plant/7/temp", after, now=end + 86_401)
    assert sensor.prune(now=end + 86_401) == [("plant/#", 1), ("plant/#", 2)]
    lifetime = sensor.create_key("lab/#", now=0, not_after=100)
    assert (lifetime.key.not_before, lifetime.key.not_after) == (0, 100)
    with pytest.raises(mqseal.MalformedError):
        sensor.create_key("office/#", not_before=5, not_after=4)


def test_keys_by_hand(site: dict[str, mqseal.Store]) -> None:
    sensor = site["sensor"]
    own = sensor.create_key("factory/#", now=0)
    assert own.issuer is None
    with pytest.raises(mqseal.Error):
        sensor.create_key("factory/#")
    newer = mqseal.TreeKey.generate("factory/#", 5)
    update = sensor.add_key(newer, now=100)
    assert (update.added, update.retired) == (True, [(1, 100 + 86400)])
    # Another issuer's lineage of the filter: kept beside ours, at any epoch, retiring nothing.
    theirs = sensor.add_key(mqseal.TreeKey.generate("factory/#", 5),
                            issuer=site["admin"].fingerprint, now=100)
    assert (theirs.added, theirs.retired) == (True, [])
    assert len([k for k in sensor.held_keys() if k.filter == "factory/#"]) == 3
    with pytest.raises(mqseal.StaleKeyError):
        sensor.add_key(mqseal.TreeKey.generate("factory/#", 3))
    with pytest.raises(mqseal.KeyConflictError):
        sensor.add_key(mqseal.TreeKey.generate("factory/#", 5))
    assert not sensor.add_key(newer).added
    assert sensor.prune(now=100 + 86401) == [("factory/#", 1)]
    assert sensor.remove_key("factory/#", 5)
    with pytest.raises(mqseal.StaleKeyError):  # a tombstone keeps it from coming back
        sensor.add_key(newer)
    with pytest.raises(mqseal.NoKeyForError):
        sensor.issue_grant("office/#", "admin")
    with pytest.raises(ValueError):
        sensor.add_key(newer, issuer="zz")


def test_lost_sequence_state_is_refused_not_reset(site: dict[str, mqseal.Store]) -> None:
    sensor = site["sensor"]
    with sensor.sealer() as sealer:
        sealer.seal("plant/a", b"x")
    (sensor.dir / "state" / "seq").unlink()
    with pytest.raises(mqseal.MissingFileError):
        sensor.sealer()
    (sensor.dir / "state" / "seq").write_text("garbage\n")
    (sensor.dir / "state" / "seq").chmod(0o600)
    with pytest.raises(mqseal.CorruptFileError):
        sensor.sealer()


def test_scoped_issuers_lineages_and_group_mac_senders(tmp_path: Path) -> None:
    """keystore.md sections 4 and 5: an issuer's scope= limits its grants (OutOfScopeError);
    two issuers' keys of one filter and epoch coexist, and the sealer uses the lineage of the
    issuer trusted first; group-mac= admits a sender's unsigned messages on its filter only."""
    admin = mqseal.Store.create(tmp_path / "admin", "admin")
    lab = mqseal.Store.create(tmp_path / "lab", "lab-admin")
    me = mqseal.Store.create(tmp_path / "me", "me")
    device = mqseal.Identity.generate()
    me.trust("admin", admin.public, sender=False, issuer=True)
    peer = me.trust("lab-admin", lab.public, sender=False, issuer=True, scope=["lab/#"])
    assert (peer.scope, peer.line.endswith(" issuer scope=lab/#")) == (["lab/#"], True)
    me.trust("device", device.public, group_mac=["plant/3/#"])
    with pytest.raises(mqseal.CorruptFileError):
        me.trust("bad", mqseal.Identity.generate().public, scope=["lab/#"])  # not an issuer
    for store, name in ((admin, "me"), (lab, "me")):
        store.trust(name, me.public)
    admin.create_key("plant/#", now=1000)
    lab.create_key("plant/#", now=1000)
    lab.create_key("lab/#", now=1000)
    from_lab = lab.issue_grant("plant/#", "me")
    with pytest.raises(mqseal.OutOfScopeError):
        me.accept_grant_message(from_lab.topic, from_lab.payload, now=1000)
    assert me.accept_grant_message(*(lambda g: (g.topic, g.payload))(
        lab.issue_grant("lab/#", "me")), now=1000) is not None
    # Widen the lab administrator's scope: both lineages of plant/# epoch 1 are then held.
    assert me.set_scope("lab-admin", ["lab/#", "plant/#"]).scope == ["lab/#", "plant/#"]
    me.accept_grant_message(from_lab.topic, from_lab.payload, now=1000)
    from_admin = admin.issue_grant("plant/#", "me")
    me.accept_grant_message(from_admin.topic, from_admin.payload, now=1000)
    plant = [k for k in me.held_keys() if k.filter == "plant/#"]
    assert sorted(k.issuer for k in plant) == sorted([admin.fingerprint, lab.fingerprint])
    assert all(k.epoch == 1 and k.not_after is None for k in plant)
    sealing = [k for k in me.sealing_keys() if k.filter == "plant/#"]
    admin_key = next(k.key for k in plant if k.issuer == admin.fingerprint)
    assert sealing == [admin_key]  # admin is listed first in `trusted`

    # group-mac from the device: on plant/3/# only; its signed window is untouched.
    key = next(k.key for k in plant if k.issuer == admin.fingerprint)
    sealer = mqseal.Sealer(device, "group-mac", start=7)
    sealer.add_key(key)
    with me.opener() as opener:
        assert opener.open("plant/3/temp", sealer.seal("plant/3/temp", b"1")).seq == 7
        with pytest.raises(mqseal.ProfileNotAllowedError):
            opener.open("plant/4/temp", sealer.seal("plant/4/temp", b"2"))
        assert opener.high_water_mark(device.public, profile="group-mac") == 7
        assert opener.high_water_mark(device.public) is None
    with me.opener() as opener:  # the group-mac window was persisted with its profile
        assert opener.high_water_mark(device.public, profile="group-mac") == 7
        with pytest.raises(mqseal.ReplayError):
            again = mqseal.Sealer(device, "group-mac", start=7)
            again.add_key(key)
            opener.open("plant/3/temp", again.seal("plant/3/temp", b"1"))
        me.set_group_mac("device", [])
        opener.set_senders(me.trusted())
        with pytest.raises(mqseal.ProfileNotAllowedError):
            opener.open("plant/3/temp", sealer.seal("plant/3/temp", b"3"))


def test_persistent_opener_bounds_its_windows_and_keeps_floors(
    site: dict[str, mqseal.Store],
) -> None:
    """Section 7.3 of the spec: a store opened with small caps evicts, and the floor that
    eviction leaves survives a restart, so an evicted topic's replay stays refused."""
    sensor = site["sensor"]
    dash = mqseal.Store.open(site["dashboard"].dir, max_windows_per_sender=2)
    with sensor.sealer() as sealer, dash.opener() as opener:
        first = sealer.seal("plant/1", b"1")
        opener.open("plant/1", first)
        for i in (2, 3):
            opener.open(f"plant/{i}", sealer.seal(f"plant/{i}", str(i).encode()))
        assert opener.window_count == 2
        floor = opener.replay_floor(sensor.public)
        assert floor == mqseal.inspect(first).seq
    reopened = mqseal.Store.open(dash.dir, max_windows_per_sender=2)
    with reopened.opener() as opener:
        assert opener.replay_floor(sensor.fingerprint) == floor
        assert opener.window_count == 2
        with pytest.raises(mqseal.TooOldError):
            opener.open("plant/1", first)


def test_persistent_opener_group_commit(site: dict[str, mqseal.Store]) -> None:
    """open_batch: one sync for the batch; refusals come back as exception instances."""
    sensor, dashboard = site["sensor"], site["dashboard"]
    with sensor.sealer() as sealer, dashboard.opener() as opener:
        batch = [(f"plant/7/{i % 2}", sealer.seal(f"plant/7/{i % 2}", bytes([i]))) for i in range(6)]
        moved = [("plant/9", batch[0][1])]  # moved to another topic: no key has its key id there
        results = opener.open_batch(batch + moved)
        assert [r.payload for r in results[:6] if isinstance(r, mqseal.Opened)] == [
            bytes([i]) for i in range(6)
        ]
        assert isinstance(results[6], mqseal.KeyNotFound)
        assert opener.window_count == 2
    with dashboard.opener() as opener:  # durable: every replay refused after the restart
        again = opener.open_batch(batch)
        assert all(isinstance(r, mqseal.ReplayError) for r in again)
