"""Broker connection options shared by the example scripts (plain, TLS with a private CA, mTLS,
passwords: the Mosquitto set-ups mqseal runs over)."""

from __future__ import annotations

import argparse
import uuid

import paho.mqtt.client as mqtt


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("broker")
    group.add_argument("--host", default="127.0.0.1")
    group.add_argument("--port", type=int, default=1883)
    group.add_argument("--cafile", help="CA certificate: connect with TLS")
    group.add_argument("--cert", help="client certificate (mTLS)")
    group.add_argument("--key", help="client certificate key (mTLS)")
    group.add_argument("--username")
    group.add_argument("--password")


def new_client(args: argparse.Namespace, role: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"mqseal-{role}-{uuid.uuid4().hex[:8]}")
    if args.cafile:
        client.tls_set(ca_certs=args.cafile, certfile=args.cert, keyfile=args.key)
    if args.username:
        client.username_pw_set(args.username, args.password)
    return client
