"""Shared fixtures: the repository's test vectors, the Rust interop helper, a real Mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "spec" / "vectors"


def pytest_report_header() -> str:
    import mqseal

    return f"mqseal {mqseal.__version__} from {Path(mqseal.__file__).parent}"


@pytest.fixture(scope="session")
def vector() -> Callable[[str], Any]:
    """Loads one spec/vectors/*.json file."""

    def load(name: str) -> Any:
        return json.loads((VECTORS / name).read_text())

    return load


def _rust_binaries() -> Path:
    """Builds the workspace's binaries and examples exactly as `cargo test --workspace` does (same
    profile and features), so that after scripts/checks/20-rust-tests.sh this is a no-op instead of
    a second full build; returns the directory holding them."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is needed for the Rust interop tests")
    build = subprocess.run(
        [cargo, "build", "-q", "--locked", "--workspace", "--profile", "test", "--bins",
         "--examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    meta = subprocess.run([cargo, "metadata", "-q", "--format-version", "1", "--no-deps"],
                          cwd=REPO, capture_output=True, text=True)
    return Path(json.loads(meta.stdout)["target_directory"]) / "debug"


@pytest.fixture(scope="session")
def rust_interop() -> Callable[[str, Path], str]:
    """Runs the Rust side of the interop tests (bindings/python/examples/interop.rs)."""
    binary = _rust_binaries() / "examples" / "interop"

    def run(command: str, bundle: Path) -> str:
        done = subprocess.run([str(binary), command, str(bundle)], cwd=REPO,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"interop {command} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def mqseal_cli() -> Path:
    """The `mqseal` command-line tool (crates/mqseal-cli), built for the interop tests."""
    return _rust_binaries() / "mqseal"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class Broker:
    """A Mosquitto started for the tests on 127.0.0.1."""

    host: str
    port: int
    log: Path


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto on a free 127.0.0.1 port with a generated config, stopped by PID."""
    binary = _mosquitto_binary()
    if binary is None:
        pytest.skip("the mosquitto binary is not installed (scripts/checks/15-install-brokers.sh "
                    "installs it)")
    workdir = tmp_path_factory.mktemp("mosquitto")
    workdir.chmod(0o755)  # the broker drops to user `mosquitto` when started as root
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "log_dest stdout\n"
        "log_type all\n"
        "persistence false\n"
    )
    conf.chmod(0o644)
    log = workdir / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
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
        yield Broker("127.0.0.1", port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
