"""The Python path (paho-mqtt + mqseal.paho) over the Mosquitto of the seeds' walkthrough: its
exact openssl commands (X.509 v1 certificates, server CN = 127.0.0.1, no subjectAltName), a TLS
listener with `require_certificate true`, a password_file made with mosquitto_passwd and an ACL.

paho's TLS is Python's `ssl`, which checks an IP host against subjectAltName IP entries only
(OpenSSL's X509_check_ip): it refuses the certificate that mosquitto_pub (libmosquitto: the CN
when there is no DNS entry) accepts. The second test shows the way through: the chain still
verified against ca.crt, Python's host-name check off (`tls_insecure_set(True)`) and
libmosquitto's rule applied to the verified peer certificate instead."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import mqseal
from mqseal.paho import SealedClient
from test_paho import WAIT, Inbox

CA_PASS = "seeds-ca-pass"
USERS = {"userclient": "client-pw", "userbroker": "broker-pw"}
ACL = "user userclient\ntopic write plant/7/#\n\nuser userbroker\ntopic read plant/#\n"


@dataclass
class SeedsBroker:
    port: int
    pki: Path
    log: Path


def _run(*args: str, cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}{done.stderr}"


def _seeds_pki(d: Path) -> None:
    """The walkthrough's commands; -subj/-passout/-passin only answer its prompts."""
    _run("openssl", "req", "-new", "-x509", "-days", "1826", "-extensions", "v3_ca", "-keyout",
         "ca.key", "-out", "ca.crt", "-subj", "/CN=seeds CA", "-passout", f"pass:{CA_PASS}", cwd=d)
    for name, cn in (("server", "/CN=127.0.0.1"), ("client", "/CN=seeds client")):
        _run("openssl", "genrsa", "-out", f"{name}.key", "2048", cwd=d)
        _run("openssl", "req", "-out", f"{name}.csr", "-key", f"{name}.key", "-new", "-subj", cn,
             cwd=d)
        _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "360", "-passin",
             f"pass:{CA_PASS}", cwd=d)


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin"):
        if Path(d, name).is_file():
            return str(Path(d, name))
    return None


@pytest.fixture(scope="module")
def seeds() -> Iterator[SeedsBroker]:
    mosquitto, passwd = _tool("mosquitto"), _tool("mosquitto_passwd")
    if mosquitto is None or passwd is None or _tool("openssl") is None:
        pytest.skip("mosquitto and openssl are needed (scripts/checks/15-install-brokers.sh)")
    # Not under pytest's private tmp tree: the broker drops to user `mosquitto` when started as
    # root, and reads the password and ACL files as that user.
    d = Path(tempfile.mkdtemp(prefix="mqseal-seeds-"))
    d.chmod(0o755)
    _seeds_pki(d)
    for i, (user, pw) in enumerate(USERS.items()):
        _run(passwd, "-b", *(["-c"] if i == 0 else []), str(d / "passwd"), user, pw, cwd=d)
    (d / "acl").write_text(ACL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\n"
        f"keyfile {d}/server.key\nrequire_certificate true\nallow_anonymous false\n"
        f"password_file {d}/passwd\nacl_file {d}/acl\npersistence false\nlog_dest stdout\n"
        "log_type all\n")
    for f in d.iterdir():
        f.chmod(0o644)
    log = d / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([mosquitto, "-c", str(d / "mosquitto.conf")], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited with {proc.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not listen on port {port}:\n{log.read_text()}")
                time.sleep(0.05)
        yield SeedsBroker(port, d, log)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def tls_client(b: SeedsBroker, user: str, cert: str, *, insecure: bool) -> mqtt.Client:
    """A paho client with the walkthrough's flags: --cafile, --cert/--key, -u/-P."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                    client_id=f"mqseal-seeds-{uuid.uuid4().hex[:12]}")
    c.tls_set(ca_certs=str(b.pki / "ca.crt"), certfile=str(b.pki / f"{cert}.crt"),
              keyfile=str(b.pki / f"{cert}.key"))
    c.tls_insecure_set(insecure)
    c.username_pw_set(user, USERS[user])
    return c


def libmosquitto_names_host(peer: dict[str, Any], host: str) -> bool:
    """libmosquitto's host-name rule on a verified peer certificate (`getpeercert()`): a
    subjectAltName DNS entry (`*.` for one label) or IP entry equal to the host; the CN only when
    there is no DNS entry."""
    san = peer.get("subjectAltName", ())
    dns = [v for k, v in san if k == "DNS"]
    ips = [v for k, v in san if k == "IP Address"]

    def match(pattern: str, name: str) -> bool:
        if pattern.startswith("*."):
            return name.partition(".")[2].lower() == pattern[2:].lower()
        return pattern.lower() == name.lower()

    try:
        ip = ipaddress.ip_address(host)
        if any(ipaddress.ip_address(v.strip()) == ip for v in ips):
            return True
    except ValueError:
        pass
    if any(match(d, host) for d in dns):
        return True
    cns = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
    return not dns and bool(cns) and match(cns[0], host)


def test_paho_refuses_by_ip_the_cn_only_certificate_mosquitto_pub_accepts(
        seeds: SeedsBroker) -> None:
    c = tls_client(seeds, "userclient", "client", insecure=False)
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        c.connect("127.0.0.1", seeds.port, keepalive=30)
    # The same flags with mosquitto_pub: accepted (libmosquitto compares the CN).
    pub = _tool("mosquitto_pub")
    if pub is None:
        pytest.skip("mosquitto_pub is not installed")
    done = subprocess.run(
        [pub, "-h", "127.0.0.1", "-p", str(seeds.port), "--cafile", str(seeds.pki / "ca.crt"),
         "--cert", str(seeds.pki / "client.crt"), "--key", str(seeds.pki / "client.key"),
         "-u", "userclient", "-P", USERS["userclient"], "-t", "plant/7/x", "-m", "x", "-q", "1"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr


def connect(c: mqtt.Client | SealedClient, b: SeedsBroker, *subscriptions: str) -> None:
    """Connects (CONNACK), checks the broker's name as libmosquitto does, subscribes (SUBACK)."""
    connected, subscribed = Inbox(), Inbox()
    c.on_connect = lambda cl, u, flags, rc, props=None: connected.put(rc)
    c.on_subscribe = lambda cl, u, mid, rcs, props=None: subscribed.put(mid)
    c.connect("127.0.0.1", b.port, keepalive=30)
    client = c.client if isinstance(c, SealedClient) else c
    sock = client.socket()
    assert isinstance(sock, ssl.SSLSocket)
    peer = sock.getpeercert()
    assert peer is not None and libmosquitto_names_host(peer, "127.0.0.1"), peer
    assert not libmosquitto_names_host(peer, "localhost")
    c.loop_start()
    rc = connected.get()
    assert not rc.is_failure, rc
    for sub in subscriptions:
        c.subscribe(sub, qos=1)
        subscribed.get()


def test_sealed_messages_through_the_seeds_broker_with_paho(seeds: SeedsBroker) -> None:
    sensor = mqseal.Identity.generate()
    plant = mqseal.TreeKey.generate("plant/#", 1)
    sealer = mqseal.Sealer(sensor, start=0)
    sealer.add_key(plant.derive("plant/7/#"))
    opener = mqseal.Opener()
    opener.trust_sender(sensor.public)
    opener.add_key(plant)
    # The walkthrough's subscriber uses the server's certificate as client certificate.
    board = SealedClient(tls_client(seeds, "userbroker", "server", insecure=True), opener=opener)
    got = Inbox()
    board.on_message = lambda c, u, m: got.put(m)
    publisher = SealedClient(tls_client(seeds, "userclient", "client", insecure=True),
                             sealer=sealer)
    try:
        connect(board, seeds, "plant/#")
        connect(publisher, seeds)
        publisher.publish("plant/7/temp", b"Hello world", qos=1).wait_for_publish(WAIT)
        m = got.get()
        assert (m.topic, m.payload, m.sender) == ("plant/7/temp", b"Hello world", sensor.public)
    finally:
        for c in (board, publisher):
            c.disconnect()
            c.loop_stop()
