#!/usr/bin/env python3
"""A dashboard subscribing to the plant with mqseal.paho: prints each verified reading with its
sender and sequence number, and each refused message with the reason.

    python dashboard.py --store DIR/dashboard [--count N]

Replay windows live in the keystore, so a restarted dashboard still refuses replayed messages.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

import mqseal
from _common import add_broker_arguments, new_client
from mqseal.paho import OpenedMessage, SealedClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="the dashboard's keystore")
    parser.add_argument("--subscribe", default="plant/#")
    parser.add_argument("--count", type=int, default=0, help="exit after N readings (0: never)")
    parser.add_argument("--max-age", type=int, default=300,
                        help="refuse readings older than this many seconds")
    add_broker_arguments(parser)
    args = parser.parse_args()

    store = mqseal.Store.open(args.store)
    names = {peer.fingerprint: peer.name for peer in store.trusted()}
    has_key = threading.Event()
    done = threading.Event()
    received = 0

    def check_keys() -> None:
        if any(k.is_live() for k in store.held_keys()):
            has_key.set()

    acked: set[int] = set()
    acks = threading.Condition()

    def subscribe(client: mqtt.Client) -> None:
        client.subscribe(args.subscribe, qos=1)

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if has_key.is_set():  # (re)subscribe once there is a key to open with
            subscribe(client)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                     properties: Any) -> None:
        with acks:
            acked.add(mid)
            acks.notify_all()

    def on_message(client: mqtt.Client, userdata: Any, msg: OpenedMessage) -> None:
        nonlocal received
        sender = names.get(msg.sender.fingerprint, msg.sender.fingerprint[:16])
        print(f"{msg.topic} {msg.payload.decode(errors='replace')} from {sender} "
              f"(seq {msg.seq}, epoch {msg.epoch})", flush=True)
        received += 1
        if args.count and received >= args.count:
            done.set()

    def on_rejected(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage,
                    error: mqseal.Error) -> None:
        print(f"refused a message on {msg.topic}: {error.name} ({error.message})", flush=True)

    policy = mqseal.OpenPolicy(max_age=args.max_age)
    with store.opener(policy) as opener:
        client = SealedClient(new_client(args, "dashboard"), opener=opener)
        client.on_message = on_message
        client.on_rejected = on_rejected
        client.on_keys = lambda c, userdata, accepted: check_keys()
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.follow_grants(store)
        check_keys()
        client.connect(args.host, args.port)
        client.loop_start()
        if not has_key.wait(30):
            print(f"no key for {args.subscribe}: has the administrator granted one?",
                  file=sys.stderr)
            return 1
        _, mid = client.subscribe(args.subscribe, qos=1)
        with acks:
            confirmed = acks.wait_for(lambda: mid in acked, 30)
        if not confirmed:
            print("the broker did not confirm the subscription", file=sys.stderr)
            return 1
        print(f"ready: subscribed to {args.subscribe}", flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
