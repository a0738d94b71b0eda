"""mqseal.paho: the paho-mqtt wrapper, first without a network, then against a real Mosquitto with
two sealed clients and a key-less eavesdropper."""

from __future__ import annotations

import logging
import queue
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import mqseal
from conftest import Broker
from mqseal.paho import OpenedMessage, SealedClient

WAIT = 30.0  # seconds to wait for a broker round trip before giving up (not a speed assertion)


@pytest.fixture
def keys() -> dict[str, Any]:
    sensor = mqseal.Identity.generate()
    plant = mqseal.TreeKey.generate("plant/#", 1)
    sealer = mqseal.Sealer(sensor, start=0)
    sealer.add_key(plant.derive("plant/7/#"))
    opener = mqseal.Opener()
    opener.trust_sender(sensor.public)
    opener.add_key(plant)
    return {"sensor": sensor, "plant": plant, "sealer": sealer, "opener": opener}


def new_client(protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                       client_id=f"mqseal-test-{uuid.uuid4().hex[:12]}", protocol=protocol)


def raw_message(topic: str, payload: bytes, *, retain: bool = False, dup: bool = False,
                mid: int = 1) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    m.payload = payload
    m.retain = retain
    m.dup = dup
    m.qos = 1
    return m


# -- without a network ----------------------------------------------------------------------------


def test_publish_seals_what_goes_to_the_client(keys: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    raw = new_client()
    sent: list[tuple[str, bytes, int, bool]] = []

    def fake_publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                     properties: Any = None) -> str:
        sent.append((topic, payload, qos, retain))
        return "info"

    monkeypatch.setattr(raw, "publish", fake_publish)
    client = SealedClient(raw, sealer=keys["sealer"])  # timestamps by default
    assert client.timestamps is True
    assert client.publish("plant/7/temp", b"21.5", qos=1) == "info"
    client.publish("plant/7/state", "on", retain=True)
    client.publish("plant/7/n", 42)
    client.publish("plant/7/f", 1.5)
    client.publish("plant/7/none")
    opener = keys["opener"]
    plain = []
    for topic, payload, _, retain in sent:
        header = mqseal.inspect(payload)
        assert header.timestamp is not None
        assert header.retain == retain
        plain.append(opener.open(topic, payload, retained=retain).payload)
    assert plain == [b"21.5", b"on", b"42", b"1.5", b""]
    assert [s[2] for s in sent] == [1, 0, 0, 0, 0]
    with pytest.raises(mqseal.KeyNotFound):
        client.publish("plant/8/temp", b"x")
    with pytest.raises(TypeError):
        client.publish("plant/7/temp", object())  # type: ignore[arg-type]
    assert len(sent) == 5
    client.timestamps = False
    client.publish("plant/7/temp", b"21.7")
    assert mqseal.inspect(sent[-1][1]).timestamp is None
    assert len(sent[-1][1]) == len(sent[0][1]) - 5


def test_on_message_gets_opened_messages_and_rejections(keys: dict[str, Any]) -> None:
    raw = new_client()
    client = SealedClient(raw, opener=keys["opener"])
    got: list[OpenedMessage] = []
    refused: list[tuple[mqtt.MQTTMessage, mqseal.Error]] = []
    client.on_message = lambda c, u, m: got.append(m)
    client.on_rejected = lambda c, u, m, e: refused.append((m, e))
    assert raw.on_message == client._on_raw_message

    sealed = keys["sealer"].seal("plant/7/temp", b"21.5", timestamp=1_800_000_000)
    raw.on_message(raw, None, raw_message("plant/7/temp", sealed, mid=7))
    [m] = got
    assert (m.topic, m.payload, m.seq, m.sender, m.mid, m.qos) == (
        "plant/7/temp", b"21.5", 0, keys["sensor"].public, 7, 1)
    assert (m.epoch, m.profile, m.retain, m.dup, m.timestamp) == (
        1, "signed", False, False, 1_800_000_000)
    assert m.raw.payload == sealed

    raw.on_message(raw, None, raw_message("plant/7/temp", b'{"temp": 99}'))
    raw.on_message(raw, None, raw_message("plant/7/temp", sealed))  # replayed
    raw.on_message(raw, None, raw_message("plant/7/temp", sealed, dup=True))  # QoS 1 redelivery
    raw.on_message(raw, None, raw_message("plant/7/other", sealed))  # moved: no key has its id
    assert len(got) == 1
    assert [type(e) for _, e in refused] == [
        mqseal.UnsupportedVersionError, mqseal.ReplayError, mqseal.KeyNotFound]
    assert refused[0][0].payload == b'{"temp": 99}'

    client.drop_duplicates = False
    raw.on_message(raw, None, raw_message("plant/7/temp", sealed, dup=True))
    assert type(refused[-1][1]) is mqseal.DuplicateError


def test_rejections_are_logged_without_on_rejected(keys: dict[str, Any],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    raw = new_client()
    SealedClient(raw, opener=keys["opener"])
    with caplog.at_level(logging.WARNING, logger="mqseal.paho"):
        raw.on_message(raw, None, raw_message("plant/7/temp", b"plaintext"))
    assert "refused a message" in caplog.text
    assert "unsupported_version" in caplog.text


def test_message_callback_add_and_delegation(keys: dict[str, Any]) -> None:
    raw = new_client()
    earlier = lambda *args: None  # noqa: E731
    raw.on_connect = earlier
    assert SealedClient(raw).on_connect is earlier
    client = SealedClient(raw, opener=keys["opener"])
    per_topic: list[OpenedMessage] = []
    client.message_callback_add("plant/7/#", lambda c, u, m: per_topic.append(m))
    sealed = keys["sealer"].seal("plant/7/temp", b"21.5")
    # paho routes a matching message to the per-topic callback instead of on_message
    raw._handle_on_message(raw_message("plant/7/temp", sealed))
    assert [m.payload for m in per_topic] == [b"21.5"]

    def on_connect(*args: Any) -> None:
        pass

    client.on_connect = on_connect
    assert client.on_connect is on_connect and raw.on_connect == client._on_raw_connect
    client.on_disconnect = on_connect
    assert raw.on_disconnect is on_connect
    client.user_data_set({"who": "dashboard"})
    assert raw.user_data_get() == {"who": "dashboard"}
    assert client.is_connected() is False
    with pytest.raises(RuntimeError, match="no sealer"):
        client.publish("plant/7/temp", b"x")
    with pytest.raises(RuntimeError, match="no opener"):
        SealedClient(new_client()).open(raw_message("plant/7/temp", sealed))
    assert "SealedClient(" in repr(client)


def test_follow_grants_puts_keys_to_use(tmp_path: Path) -> None:
    admin = mqseal.Store.create(tmp_path / "admin", "admin")
    sensor = mqseal.Store.create(tmp_path / "sensor", "sensor")
    board = mqseal.Store.create(tmp_path / "board", "board")
    for member in (sensor, board):
        admin.trust(member.name, member.public)
        member.trust("admin", admin.public, sender=False, issuer=True)
    board.trust_line(sensor.public_line)
    admin.create_key("plant/#")

    raw_pub, raw_sub = new_client(), new_client()
    subscribed: list[str] = []
    raw_sub.subscribe = lambda topic, qos=0, **kw: subscribed.append(topic)  # type: ignore[method-assign]
    with sensor.sealer() as sealer, board.opener() as opener:
        publisher = SealedClient(raw_pub, sealer=sealer)
        publisher.follow_grants(sensor)
        plain_opener = mqseal.Opener()
        plain_opener.trust_sender(sensor.public)
        dashboard = SealedClient(raw_sub, opener=plain_opener)
        dashboard.follow_grants(board)
        got: list[OpenedMessage] = []
        dashboard.on_message = lambda c, u, m: got.append(m)
        keys: list[mqseal.AcceptedGrant] = []
        dashboard.on_keys = lambda c, u, accepted: keys.append(accepted)
        connects: list[Any] = []
        dashboard.on_connect = lambda *args: connects.append(args)
        raw_sub.on_connect(raw_sub, None, {}, 0, None)  # what paho calls once connected
        assert subscribed == [board.grant_subscription] and len(connects) == 1

        with pytest.raises(mqseal.KeyNotFound):
            sealer.seal("plant/7/temp", b"x")
        for client, raw, member in ((publisher, raw_pub, "sensor"), (dashboard, raw_sub, "board")):
            grant = admin.issue_grant("plant/7/#", member)
            raw._handle_on_message(raw_message(grant.topic, grant.payload))
        assert [k.key.filter for k in keys] == ["plant/7/#"]
        sealed = publisher.sealer.seal("plant/7/temp", b"21.5")  # type: ignore[union-attr]
        raw_sub._handle_on_message(raw_message("plant/7/temp", sealed))
        assert [(m.payload, m.sender) for m in got] == [(b"21.5", sensor.public)]
        # the persistent opener gets the store's keys through load_keys
        persistent = SealedClient(new_client(), opener=opener)
        persistent.load_keys(board)
        assert persistent.open(raw_message("plant/7/temp", sealed)).seq == 0

        refused: list[mqseal.Error] = []
        dashboard.on_rejected = lambda c, u, m, e: refused.append(e)
        forged = mqseal.Grant.issue(mqseal.Identity.generate(), board.public,
                                    mqseal.TreeKey.generate("plant/#", 9))
        raw_sub._handle_on_message(raw_message(grant.topic, forged.to_bytes()))
        assert [type(e) for e in refused] == [mqseal.UntrustedIssuerError]


def test_undecodable_topic_is_refused(keys: dict[str, Any]) -> None:
    client = SealedClient(new_client(), opener=keys["opener"])
    bad = mqtt.MQTTMessage(mid=1, topic=b"plant/\xff")
    bad.payload = keys["sealer"].seal("plant/7/temp", b"x")
    with pytest.raises(mqseal.InvalidTopicError):
        client.open(bad)


# -- against a real broker ------------------------------------------------------------------------


class Inbox:
    """Collects what paho callbacks deliver, for the test thread to wait on."""

    def __init__(self) -> None:
        self.items: queue.Queue[Any] = queue.Queue()

    def put(self, *args: Any) -> None:
        self.items.put(args[0] if len(args) == 1 else args)

    def get(self) -> Any:
        try:
            return self.items.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"nothing arrived within {WAIT} s")

    def empty(self) -> bool:
        return self.items.empty()


def connect(client: mqtt.Client | SealedClient, broker: Broker, *subscriptions: str) -> None:
    """Connects, subscribes and waits for the broker's SUBACK."""
    connected, subscribed = Inbox(), Inbox()
    client.on_connect = lambda c, u, flags, rc, props=None: connected.put(rc)
    client.on_subscribe = lambda c, u, mid, rcs, props=None: subscribed.put(mid)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    rc = connected.get()
    assert not rc.is_failure, rc
    for sub in subscriptions:
        client.subscribe(sub, qos=1)
        subscribed.get()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt3.1.1", "mqtt5"])
def test_live_two_sealed_clients_and_an_eavesdropper(mosquitto: Broker,
                                                     protocol: mqtt.MQTTProtocolVersion) -> None:
    admin = mqseal.Identity.generate()
    sensor = mqseal.Identity.generate()
    dashboard = mqseal.Identity.generate()
    run = uuid.uuid4().hex[:8]
    root = f"plant-{run}"
    plant = mqseal.TreeKey.generate(f"{root}/#", 1)

    # The dashboard receives its key as a grant through the broker.
    grant = mqseal.Grant.issue(admin, dashboard.public, plant)
    sealer = mqseal.Sealer(sensor, start=0)
    sealer.add_key(plant.derive(f"{root}/7/#"))
    opener = mqseal.Opener()
    opener.trust_sender(sensor.public)

    clients: list[mqtt.Client | SealedClient] = []
    try:
        spy_inbox = Inbox()
        spy = new_client(protocol)
        spy.on_message = lambda c, u, m: spy_inbox.put(m.topic, bytes(m.payload), m.retain)
        connect(spy, mosquitto, f"{root}/#", f"grants-{run}/#")
        clients.append(spy)

        got, refused = Inbox(), Inbox()
        board = SealedClient(new_client(protocol), opener=opener)
        board.on_message = lambda c, u, m: got.put(m)
        board.on_rejected = lambda c, u, m, e: refused.put(m.topic, e)
        grants = Inbox()  # grants are not sealed messages: a plain per-topic paho callback
        board.client.message_callback_add(
            f"grants-{run}/#", lambda c, u, m: grants.put(bytes(m.payload)))
        connect(board, mosquitto, f"{root}/#", f"grants-{run}/{dashboard.fingerprint}")
        clients.append(board)

        publisher = SealedClient(new_client(protocol), sealer=sealer)
        connect(publisher, mosquitto)
        clients.append(publisher)

        # key distribution in band: the grant is safe to publish
        publisher.client.publish(f"grants-{run}/{dashboard.fingerprint}", grant.to_bytes(), qos=1,
                                 retain=True)
        wire_grant = grants.get()
        opener.add_key(mqseal.Grant.from_bytes(wire_grant).accept(dashboard, [admin.public]))
        spy_inbox.get()  # the spy saw the grant go by; it cannot use it

        readings = [f"{20 + i / 10:.1f}".encode() for i in range(5)]
        for r in readings:
            publisher.publish(f"{root}/7/temp", r, qos=1).wait_for_publish(WAIT)
        opened = [got.get() for _ in readings]
        assert [m.payload for m in opened] == readings
        assert [m.seq for m in opened] == [0, 1, 2, 3, 4]
        assert all(m.sender == sensor.public and m.topic == f"{root}/7/temp" for m in opened)

        # the key-less client only ever saw ciphertext
        seen = [spy_inbox.get() for _ in readings]
        for (topic, payload, _), reading in zip(seen, readings):
            assert topic == f"{root}/7/temp"
            assert reading not in payload
            header = mqseal.inspect(payload)
            assert header.sender_id == sensor.public.sender_id
            with pytest.raises(mqseal.UnknownSenderError):
                mqseal.Opener().open(topic, payload)

        # what the spy can do: replay, move, or inject plaintext -- all refused, none delivered
        spy.publish(f"{root}/7/temp", seen[0][1], qos=1).wait_for_publish(WAIT)
        spy.publish(f"{root}/7/humidity", seen[1][1], qos=1).wait_for_publish(WAIT)
        spy.publish(f"{root}/7/temp", b'{"temp": 99.9}', qos=1).wait_for_publish(WAIT)
        errors = [refused.get()[1] for _ in range(3)]
        assert [type(e) for e in errors] == [
            mqseal.ReplayError, mqseal.KeyNotFound, mqseal.UnsupportedVersionError]
        assert got.empty()

        # a retained sealed message reaches a later subscriber, retain flag verified
        publisher.publish(f"{root}/7/setpoint", b"22.0", qos=1, retain=True).wait_for_publish(WAIT)
        assert got.get().payload == b"22.0"
        late_opener = mqseal.Opener()
        late_opener.trust_sender(sensor.public)
        late_opener.add_key(plant)
        late_got = Inbox()
        late = SealedClient(new_client(protocol), opener=late_opener)
        late.on_message = lambda c, u, m: late_got.put(m)
        connect(late, mosquitto, f"{root}/7/setpoint")
        clients.append(late)
        retained = late_got.get()
        assert (retained.payload, retained.retain, retained.seq) == (b"22.0", True, 5)
        # clean up the retained messages
        spy.publish(f"{root}/7/setpoint", b"", retain=True, qos=1).wait_for_publish(WAIT)
        spy.publish(f"grants-{run}/{dashboard.fingerprint}", b"", retain=True,
                    qos=1).wait_for_publish(WAIT)
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()
