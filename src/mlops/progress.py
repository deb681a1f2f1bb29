"""Progress lines for long work: each stage with the time since the start."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


class Progress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        print(f"           {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"[{self.elapsed():6.1f}s] ▶ {title}", file=self.stream, flush=True)
        yield
        took = time.monotonic() - began
        print(f"[{self.elapsed():6.1f}s] ✓ {title} ({took:.1f}s)", file=self.stream, flush=True)
