"""One progress reporter for long steps: Dagster log lines at every 10 %, and a bar on a terminal."""

from __future__ import annotations

import logging
import sys
import time


class Progress:
    def __init__(self, label: str, total: int, log: logging.Logger | None = None, bar: bool = False):
        self.label, self.total, self.log, self.done = label, max(total, 0), log, 0
        self.t0 = time.perf_counter()
        self._next_pct = 10
        self._bar = None
        if bar and self.total and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit="it", file=sys.stderr, leave=False)

    def __call__(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        pct = 100 * self.done // self.total if self.total else 100
        if self.log and pct >= self._next_pct:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            self.log.info(f"{self.label}: {self.done}/{self.total} ({pct}%, {rate:.1f}/s)")
            self._next_pct = (pct // 10 + 1) * 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
