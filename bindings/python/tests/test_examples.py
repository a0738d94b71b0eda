"""The example scripts in examples/python run end to end against the test Mosquitto: setup_site
publishes grants, the dashboard and the sensor receive their keys in band, readings flow sealed,
and a restarted sensor continues above its reserved sequence numbers."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, Broker

EXAMPLES = REPO / "examples" / "python"
WAIT = 60.0  # seconds before giving up on a script (not a speed assertion)


class Script:
    """A running example script whose output lines the test reads as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-u", *args], cwd=EXAMPLES, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"no line starting with {prefix!r}; got {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self) -> list[str]:
        code = self.proc.wait(timeout=WAIT)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert code == 0, "\n".join(self.seen)
        return self.seen

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=EXAMPLES, capture_output=True, text=True,
                          timeout=WAIT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sensor_to_dashboard(mosquitto: Broker, tmp_path: Path) -> None:
    broker = ["--host", mosquitto.host, "--port", str(mosquitto.port)]
    site = tmp_path / "site"
    out = run("setup_site.py", str(site), *broker)
    assert "granted plant/7/# (epoch 1) to sensor-7" in out
    assert "granted plant/# (epoch 1) to dashboard" in out

    dashboard = Script("dashboard.py", "--store", str(site / "dashboard"), "--count", "5", *broker)
    try:
        dashboard.expect("ready: subscribed to plant/#")
        first = run("sensor.py", "--store", str(site / "sensor-7"), "--count", "3",
                    "--interval", "0", *broker)
        assert [line.split("(seq ")[1] for line in first.splitlines()] == ["0)", "1)", "2)"]
        # a restarted sensor resumes above its durable reservation: no number is ever reused
        second = run("sensor.py", "--store", str(site / "sensor-7"), "--count", "2",
                     "--interval", "0", *broker)
        assert [line.split("(seq ")[1] for line in second.splitlines()] == ["4096)", "4097)"]
        readings = [dashboard.expect("plant/7/temp") for _ in range(5)]
        lines = dashboard.finish()
    finally:
        dashboard.kill()
    assert all(" from sensor-7 (seq " in r and "epoch 1)" in r for r in readings), readings
    sent = [line.split()[2] for line in first.splitlines() + second.splitlines()]
    assert [r.split()[1] for r in readings] == sent
    assert not [line for line in lines if line.startswith("refused")]
