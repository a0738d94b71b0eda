"""Seal and open rate of the Python binding for one profile and payload size.

    python bindings/python/bench/bench_rate.py signed 64 4000
    # seal_per_s=35120 open_per_s=25544

Same set-up as the Rust reference (crates/mqseal/examples/rate.rs) and the C program
(bindings/c/bench/bench_rate.c): one topic, a fixed payload, COUNT messages sealed back to back,
then COUNT fresh messages opened back to back, each after a short warm-up. scripts/bench/bindings.sh
runs all three in one go and prints the ratios (BENCHMARKS.md).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Literal

import mqseal

TOPIC = "bench/rate/t"


def rate(warm: int, count: int, op: Callable[[], object]) -> float:
    """Operations per second over `count` calls of `op`, after `warm` untimed calls."""
    for _ in range(warm):
        op()
    start = time.perf_counter()
    for _ in range(count):
        op()
    return count / (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("signed", "group-mac"):
        print("usage: bench_rate.py signed|group-mac SIZE COUNT", file=sys.stderr)
        return 2
    profile: Literal["signed", "group-mac"] = "signed" if argv[0] == "signed" else "group-mac"
    size, count = int(argv[1]), int(argv[2])
    warm = max(count // 10, 1)

    me = mqseal.Identity.from_seed(bytes([1] * 32))
    key = mqseal.TreeKey.from_secret("bench/#", 1, bytes([2] * 32))
    sealer = mqseal.Sealer(me, profile, start=0)
    sealer.add_key(key)
    opener = mqseal.Opener()
    opener.trust_group_mac_sender(me.public, "bench/#")
    opener.add_key(key)
    payload = bytes([0x42] * size)

    seal = sealer.seal
    seal_per_s = rate(warm, count, lambda: seal(TOPIC, payload))

    sealed = iter([seal(TOPIC, payload) for _ in range(warm + count)])
    open_ = opener.open
    open_per_s = rate(warm, count, lambda: open_(TOPIC, next(sealed)))
    print(f"seal_per_s={seal_per_s:.0f} open_per_s={open_per_s:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
