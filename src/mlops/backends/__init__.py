"""Backends behind the seam in base.py; `open_backend` picks one."""

from __future__ import annotations

import os
from pathlib import Path

from mlops.backends.base import Backend
from mlops.config import EnvConfig
from mlops.errors import MlopsError
from mlops.progress import Progress

BACKENDS = ("local", "azure")


def selected(name: str | None = None) -> str:
    """The backend named by --backend, else MLOPS_BACKEND, else local."""
    return name or os.environ.get("MLOPS_BACKEND", "local")


def open_backend(
    config: EnvConfig,
    root: Path,
    home: Path,
    name: str | None = None,
    progress: Progress | None = None,
) -> Backend:
    name = selected(name)
    if name == "local":
        from mlops.backends.local.backend import LocalBackend

        return LocalBackend(config, root, home, progress=progress)
    if name == "azure":
        from mlops.backends.azure.backend import AzureBackend

        return AzureBackend(config, root, home, progress=progress)
    raise MlopsError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
