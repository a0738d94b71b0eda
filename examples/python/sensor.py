#!/usr/bin/env python3
"""A temperature sensor publishing sealed readings with mqseal.paho.

    python sensor.py --store DIR/sensor-7 --count 10 --interval 1

Its key arrives in band (the grant setup_site.py published); its sequence numbers come from the
keystore, so they never repeat even if the sensor is killed and restarted.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import mqseal
from _common import add_broker_arguments, new_client
from mqseal.paho import SealedClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="the sensor's keystore")
    parser.add_argument("--topic", default="plant/7/temp")
    parser.add_argument("--count", type=int, default=0, help="readings to send (0: forever)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    add_broker_arguments(parser)
    args = parser.parse_args()

    store = mqseal.Store.open(args.store)
    has_key = threading.Event()

    def check_keys() -> None:
        if any(k.covers(args.topic) for k in store.sealing_keys()):
            has_key.set()

    with store.sealer() as sealer:
        client = SealedClient(new_client(args, "sensor"), sealer=sealer, timestamps=True)
        client.follow_grants(store)
        client.on_keys = lambda c, userdata, accepted: check_keys()
        client.on_rejected = lambda c, u, msg, error: print(f"refused a grant: {error}")
        check_keys()
        client.connect(args.host, args.port)
        client.loop_start()
        if not has_key.wait(30):
            print(f"no key for {args.topic}: has the administrator granted one?", file=sys.stderr)
            return 1
        sent = 0
        while args.count == 0 or sent < args.count:
            reading = f"{random.gauss(21.0, 0.5):.1f}"
            seq = sealer.next_seq
            client.publish(args.topic, reading, qos=1).wait_for_publish(30)
            print(f"sent {args.topic} {reading} (seq {seq})", flush=True)
            sent += 1
            if args.count == 0 or sent < args.count:
                time.sleep(args.interval)
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
