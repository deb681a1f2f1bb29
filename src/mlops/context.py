"""What every verb works with: the checkout, the state home, progress, a backend per environment.

Nothing a later verb needs is kept here (verbs hand each other job ids and model versions
explicitly); the backends are opened once per environment and reused within one command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops import config as config_module
from mlops import events
from mlops.backends import open_backend
from mlops.backends.base import Backend
from mlops.progress import Progress

# Opens the backend of one environment; tests pass their own (e.g. one on the Azure double).
BackendFactory = Callable[[config_module.EnvConfig], Backend]


class Context:
    def __init__(
        self,
        root: Path,
        home: Path,
        backend_name: str | None = None,
        progress: Progress | None = None,
        backend_factory: BackendFactory | None = None,
    ):
        self.root, self.home, self.backend_name = root, home, backend_name
        self.progress = progress or Progress()
        self.backend_factory = backend_factory or self._open
        self._backends: dict[str, Backend] = {}
        # Where each lifecycle event goes: the log and webhook; tests add a list's append.
        self.event_sinks: list[events.Sink] = [
            events.Recorder(home, lambda env: self.config(env).events_webhook, self.say)
        ]

    def _open(self, config: config_module.EnvConfig) -> Backend:
        return open_backend(config, self.root, self.home, self.backend_name, self.progress)

    def config(self, env: str) -> config_module.EnvConfig:
        return config_module.load(env, self.root)

    def backend(self, env: str) -> Backend:
        if env not in self._backends:
            self._backends[env] = self.backend_factory(self.config(env))
        return self._backends[env]

    def reopen(self, env: str) -> None:
        """Open env's backend afresh at its next use (e.g. after the factory's identity changed)."""
        self._backends.pop(env, None)

    def emit(
        self,
        kind: str,
        env: str,
        model: str | None = None,
        sha256: str | None = None,
        **details: object,
    ) -> events.Event:
        """Record one lifecycle event with every sink."""
        event = events.make(kind, env, self.root, model, sha256, **details)
        for sink in self.event_sinks:
            sink(event)
        return event

    def say(self, message: str) -> None:
        self.progress.say(message)
