"""paho-mqtt 2.x integration: a client whose ``publish()`` seals and whose ``on_message`` opens.

::

    import paho.mqtt.client as mqtt
    from mqseal.paho import SealedClient

    client = SealedClient(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), sealer=sealer, opener=opener)
    client.on_message = lambda c, userdata, msg: print(msg.topic, msg.payload, msg.sender, msg.seq)
    client.on_rejected = lambda c, userdata, message, error: print("refused:", error)
    client.connect("127.0.0.1")
    client.subscribe("plant/#")
    client.loop_start()
    client.publish("plant/7/temp", b"21.5", qos=1)

Everything else (``connect``, ``subscribe``, ``loop_start``, ``on_connect``...) is the wrapped
paho ``Client``'s own, reached through the wrapper. Messages that do not open (plaintext,
forged, replayed, no key...) never reach ``on_message``: they go to ``on_rejected`` with the
:class:`mqseal.Error` that refused them (logged as a warning when ``on_rejected`` is unset).
QoS 1 redeliveries of an already opened message (MQTT DUP flag) are dropped silently unless
``drop_duplicates=False``.

With a :class:`mqseal.Store`, use its persistent sealer and opener (sequence numbers and replay
windows survive restarts) and let the client receive its keys in band::

    store = mqseal.Store.open("sensor-store")
    client = SealedClient(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2), sealer=store.sealer())
    client.follow_grants(store)   # subscribes to the store's grant topic on every connect
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from mqseal._errors import DuplicateError, Error, _from_name
from mqseal._native import (
    AcceptedGrant,
    Opener,
    PersistentOpener,
    PersistentSealer,
    PublicIdentity,
    Sealer,
    Store,
)

__all__ = ["OpenedMessage", "SealedClient", "OnMessage", "OnRejected"]

log = logging.getLogger("mqseal.paho")


@dataclass(frozen=True)
class OpenedMessage:
    """A received message after verification and decryption.

    Carries the same fields as paho's ``MQTTMessage`` (``topic``, ``payload``, ``qos``,
    ``retain``, ``mid``, ``dup``, ``properties``) with ``payload`` the plaintext, plus who sent
    it and under which sequence number, epoch and profile. ``raw`` is paho's original message
    (its payload is the ciphertext).
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool
    properties: Properties | None
    sender: PublicIdentity
    seq: int
    epoch: int
    profile: str
    timestamp: int | None
    raw: mqtt.MQTTMessage


#: ``on_message(client, userdata, message)`` with an :class:`OpenedMessage`.
OnMessage = Callable[[mqtt.Client, Any, OpenedMessage], None]
#: ``on_rejected(client, userdata, message, error)`` with paho's raw message.
OnRejected = Callable[[mqtt.Client, Any, mqtt.MQTTMessage, Error], None]

PayloadType = str | bytes | bytearray | int | float | None

AnySealer = Sealer | PersistentSealer
AnyOpener = Opener | PersistentOpener

_OWN = frozenset(
    {
        "client",
        "sealer",
        "opener",
        "on_message",
        "on_rejected",
        "on_connect",
        "on_keys",
        "timestamps",
        "drop_duplicates",
        "_seal_lock",
        "_open_lock",
        "_grant_subscriptions",
    }
)


def _payload_bytes(payload: PayloadType) -> bytes:
    """Converts a payload the way paho's ``publish()`` does."""
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if isinstance(payload, (int, float)):
        return str(payload).encode("ascii")
    raise TypeError("payload must be a string, bytearray, int, float or None.")


class SealedClient:
    """Wraps a paho-mqtt 2.x ``Client`` so that ``publish()`` seals and ``on_message`` opens.

    ``sealer`` is needed to publish, ``opener`` to receive; a client may have one or both.
    Each message carries the sender's clock (as the protocol's default: openers with a
    ``max_age`` policy refuse messages without one); ``timestamps=False`` leaves it out (5 bytes
    shorter). The wrapper installs itself as the client's ``on_message``; set the
    callbacks on the wrapper, not on the wrapped client (an ``on_connect`` set before wrapping
    is kept).
    """

    client: mqtt.Client
    sealer: AnySealer | None
    opener: AnyOpener | None
    on_message: OnMessage | None
    on_rejected: OnRejected | None
    #: Called like paho's ``on_connect`` (after the grant subscriptions are renewed).
    on_connect: Callable[..., None] | None
    #: Called as ``on_keys(client, userdata, accepted_grant)`` once a grant's key is in use.
    on_keys: Callable[[mqtt.Client, Any, AcceptedGrant], None] | None
    timestamps: bool
    drop_duplicates: bool

    def __init__(
        self,
        client: mqtt.Client,
        *,
        sealer: AnySealer | None = None,
        opener: AnyOpener | None = None,
        on_message: OnMessage | None = None,
        on_rejected: OnRejected | None = None,
        timestamps: bool = True,
        drop_duplicates: bool = True,
    ) -> None:
        object.__setattr__(self, "client", client)
        self.sealer = sealer
        self.opener = opener
        self.on_message = on_message
        self.on_rejected = on_rejected
        self.timestamps = timestamps
        self.drop_duplicates = drop_duplicates
        self.on_connect = client.on_connect  # keep a callback set before wrapping
        self.on_keys = None
        self._seal_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._grant_subscriptions: list[tuple[str, int]] = []
        client.on_message = self._on_raw_message
        client.on_connect = self._on_raw_connect

    # -- delegation to the wrapped client ---------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called for names the wrapper does not define: connect, subscribe, loop_start...
        return getattr(self.client, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:  # on_connect, user_data..., belong to the wrapped client
            setattr(self.client, name, value)

    def __repr__(self) -> str:
        return f"SealedClient(sealer={self.sealer!r}, opener={self.opener!r})"

    # -- sending ----------------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Seals ``payload`` for ``topic`` (retain flag bound in) and publishes the sealed bytes.

        Raises :class:`mqseal.Error` (e.g. ``KeyNotFound``) if it cannot be sealed; nothing is
        published then.
        """
        if self.sealer is None:
            raise RuntimeError("this SealedClient has no sealer: it cannot publish")
        data = _payload_bytes(payload)
        timestamp: Literal["now"] | None = "now" if self.timestamps else None
        with self._seal_lock:
            sealed = self.sealer.seal(topic, data, retain=retain, timestamp=timestamp)
            return self.client.publish(topic, sealed, qos=qos, retain=retain, properties=properties)

    # -- receiving --------------------------------------------------------------------------------

    def open(self, message: mqtt.MQTTMessage) -> OpenedMessage:
        """Opens one paho message (raises :class:`mqseal.Error` if it does not open)."""
        if self.opener is None:
            raise RuntimeError("this SealedClient has no opener: it cannot receive")
        try:
            topic = message.topic
        except UnicodeDecodeError:
            raise _from_name("invalid_topic") from None
        with self._open_lock:
            opened = self.opener.open(
                topic, message.payload, retained=message.retain, duplicate=message.dup
            )
        return OpenedMessage(
            topic=topic,
            payload=opened.payload,
            qos=message.qos,
            retain=message.retain,
            mid=message.mid,
            dup=message.dup,
            properties=message.properties,
            sender=opened.sender,
            seq=opened.seq,
            epoch=opened.epoch,
            profile=opened.profile,
            timestamp=opened.timestamp,
            raw=message,
        )

    def message_callback_add(self, sub: str, callback: OnMessage) -> None:
        """Like paho's ``message_callback_add``, with opened messages (rejections go to
        ``on_rejected``)."""

        def deliver(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            self._dispatch(client, userdata, message, callback)

        self.client.message_callback_add(sub, deliver)

    # -- keys in band ------------------------------------------------------------------------------

    def follow_grants(self, store: Store, qos: int = 1) -> None:
        """Receives this identity's grants over MQTT: subscribes to ``store.grant_subscription``
        (now if connected, and again on every connect), stores each grant in ``store`` and puts
        its key to use in the sealer and opener. Refused grants go to ``on_rejected``."""
        subscription = store.grant_subscription

        def on_grant(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            try:
                accepted = store.accept_grant_message(message.topic, message.payload)
            except Error as error:
                self._reject(client, userdata, message, error)
                return
            if accepted is None:  # a cleared retained grant
                return
            self.load_keys(store)
            if self.on_keys is not None:
                self.on_keys(client, userdata, accepted)

        self.client.message_callback_add(subscription, on_grant)
        self._grant_subscriptions.append((subscription, qos))
        if self.client.is_connected():
            self.client.subscribe(subscription, qos)

    def load_keys(self, store: Store) -> None:
        """Puts the keys ``store`` holds to use: sealing keys in the sealer, held keys (with
        their retirement times) in the opener."""
        sealer, opener = self.sealer, self.opener
        if isinstance(sealer, PersistentSealer):
            with self._seal_lock:
                sealer.set_keys(store.sealing_keys())
        elif sealer is not None:
            with self._seal_lock:
                for key in store.sealing_keys():
                    sealer.add_key(key)
        if isinstance(opener, PersistentOpener):
            with self._open_lock:
                opener.set_keys(store.held_keys())
        elif opener is not None:
            with self._open_lock:
                for held in store.held_keys():
                    opener.add_key(held.key)
                    if held.not_after is not None:
                        opener.retire_key(held.filter, held.epoch, held.not_after)

    def _on_raw_connect(self, client: mqtt.Client, *args: Any) -> None:
        for subscription, qos in self._grant_subscriptions:
            client.subscribe(subscription, qos)
        if self.on_connect is not None:
            self.on_connect(client, *args)

    def _reject(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage,
                error: Error) -> None:
        if self.on_rejected is not None:
            self.on_rejected(client, userdata, message, error)
        else:
            log.warning("refused a message on %r: %s", message._topic, error)

    def _on_raw_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._dispatch(client, userdata, message, self.on_message)

    def _dispatch(
        self,
        client: mqtt.Client,
        userdata: Any,
        message: mqtt.MQTTMessage,
        callback: OnMessage | None,
    ) -> None:
        try:
            opened = self.open(message)
        except Error as error:
            if isinstance(error, DuplicateError) and self.drop_duplicates:
                log.debug("dropped a redelivery on %r (mid %d)", message._topic, message.mid)
                return
            self._reject(client, userdata, message, error)
            return
        if callback is not None:
            callback(client, userdata, opened)
