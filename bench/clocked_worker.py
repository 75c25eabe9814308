"""Run `outage worker` (the deployed code, unchanged) on a clock of its own, so that tests
and benchmarks decide which minutes are complete: frozen at a minute (speed 0), or running
`speed` times faster than the wall clock from that minute on (speed = 60 / interval gives
every detection cycle a new minute).

usage: python bench/clocked_worker.py START_MINUTE T0 SPEED [outage worker options]
(T0: the unix time at which the clock reads START_MINUTE)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def main(argv: list[str]) -> int:
    start, t0, speed = int(argv[0]), float(argv[1]), float(argv[2])
    from cli.main import main as outage
    from workers import loop

    loop.clock = lambda: start * 60 + (time.time() - t0) * speed
    return outage(["worker", *argv[3:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
