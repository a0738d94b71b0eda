#!/usr/bin/env python3
"""Creates the keystores of a small site -- an administrator, a sensor and a dashboard -- and
hands out keys the mqseal way: as grants published (retained) on the broker, which relays them
without being able to read them.

    python setup_site.py DIR --host 127.0.0.1 --port 1883

Then run dashboard.py --store DIR/dashboard and sensor.py --store DIR/sensor-7.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mqseal
from _common import add_broker_arguments, new_client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="directory for the three keystores")
    add_broker_arguments(parser)
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        admin = mqseal.Store.create(args.dir / "admin", "admin")
        sensor = mqseal.Store.create(args.dir / "sensor-7", "sensor-7")
        dashboard = mqseal.Store.create(args.dir / "dashboard", "dashboard")
    except mqseal.StoreExistsError as e:
        print(f"{e.message}: remove {args.dir} to start over", file=sys.stderr)
        return 1

    # Who trusts whom (in real life the public lines travel by e-mail, config management...).
    admin.trust("sensor-7", sensor.public)
    admin.trust("dashboard", dashboard.public, sender=False)
    for member in (sensor, dashboard):
        member.trust_line(admin.public_line, sender=False, issuer=True)
    dashboard.trust_line(sensor.public_line)

    # One root key for the plant; the sensor only gets the subtree it publishes in.
    admin.create_key("plant/#")
    grants = [admin.issue_grant("plant/7/#", "sensor-7"), admin.issue_grant("plant/#", "dashboard")]

    client = new_client(args, "admin")
    client.connect(args.host, args.port)
    client.loop_start()
    for grant in grants:
        client.publish(grant.topic, grant.payload, qos=1, retain=True).wait_for_publish(30)
        print(f"granted {grant.filter} (epoch {grant.epoch}) to {grant.recipient_name} "
              f"on {grant.topic}")
    client.disconnect()
    client.loop_stop()
    print(f"keystores in {args.dir}: admin, sensor-7, dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
