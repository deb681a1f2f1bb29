"""Settings of one deployment environment, read from environments/<env>.yml.

Every refusal names the file, the field and the value, in one sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops import window as window_module
from mlops.errors import ConfigError, MlopsError

ENVIRONMENTS = ("dev", "preprod", "prod")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


@dataclass(frozen=True)
class Gate:
    thresholds: dict[str, float]
    tolerance: float


@dataclass(frozen=True)
class Monitor:
    psi: float
    ks: float
    min_rows: int
    window: str = "7d"  # how far back `mlops monitor` looks unless --since says otherwise


@dataclass(frozen=True)
class EnvConfig:
    name: str
    path: Path
    model_name: str
    model_version: int | None  # the version this environment serves; None: nothing promoted
    endpoint_name: str
    instance_type: str
    instance_count: int
    azure: dict[str, str]
    mirror_percent: int = 0  # share of live traffic copied to a new deployment before the switch
    mirror_seconds: int = 0
    target_rps: int | None = None  # the load `mlops profile` sizes the endpoint for
    training_data: str | None = None
    training_params: dict[str, Any] = field(default_factory=dict)
    gate: Gate | None = None
    monitor: Monitor | None = None

    def require_gate(self) -> Gate:
        if self.gate is None:
            raise ConfigError(f"{self.path.name}: no `gate` section; the gate needs thresholds")
        return self.gate

    def require_monitor(self) -> Monitor:
        if self.monitor is None:
            raise ConfigError(f"{self.path.name}: no `monitor` section; drift needs thresholds")
        return self.monitor


class _Reader:
    """Typed access to a YAML mapping that reports file and dotted field on error."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    def fail(self, field_name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path.as_posix()}: field `{field_name}` {problem}")

    def get(self, dotted: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if required:
                    raise self.fail(dotted, "is missing")
                return None
            node = node[part]
        if node is None and not required:
            return None
        if not isinstance(node, kind) or isinstance(node, bool) and bool not in _as_tuple(kind):
            names = " or ".join(k.__name__ for k in _as_tuple(kind))
            raise self.fail(dotted, f"must be {names}, not {node!r}")
        return node


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def environments_dir(root: Path) -> Path:
    return root / "environments"


def load(env: str, root: Path) -> EnvConfig:
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {', '.join(ENVIRONMENTS)}")
    path = environments_dir(root) / f"{env}.yml"
    shown = Path("environments") / path.name
    if not path.is_file():
        raise ConfigError(f"{shown.as_posix()}: file not found under {root}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{shown.as_posix()}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{shown.as_posix()}: must be a mapping of settings")
    r = _Reader(shown, data)

    declared = r.get("environment", str)
    if declared != env:
        raise r.fail("environment", f"says {declared!r} but the file is {path.name}")
    model_name = r.get("model.name", str)
    if not _NAME.match(model_name):
        raise r.fail(
            "model.name", f"must be 3-32 lowercase letters, digits or dashes, not {model_name!r}"
        )
    # A version number or nothing: "latest" would make two readers at two times see two models.
    version = r.get("model.version", (int, str, float), required=False)
    if version is not None and (not isinstance(version, int) or version < 1):
        raise r.fail(
            "model.version",
            f"must be a version number (a positive integer) or empty, not {version!r}",
        )
    endpoint_name = r.get("endpoint.name", str)
    if not _NAME.match(endpoint_name):
        raise r.fail(
            "endpoint.name",
            f"must be 3-32 lowercase letters, digits or dashes, not {endpoint_name!r}",
        )
    instance_count = r.get("endpoint.instance_count", int)
    if instance_count < 1:
        raise r.fail("endpoint.instance_count", f"must be at least 1, not {instance_count}")
    mirror_percent = r.get("endpoint.mirror_percent", int, required=False) or 0
    if not 0 <= mirror_percent <= 50:
        raise r.fail("endpoint.mirror_percent", f"must be from 0 to 50, not {mirror_percent}")
    mirror_seconds = r.get("endpoint.mirror_seconds", int, required=False) or 0
    if not 0 <= mirror_seconds <= 3600:
        raise r.fail("endpoint.mirror_seconds", f"must be from 0 to 3600, not {mirror_seconds}")
    target_rps = r.get("endpoint.target_rps", int, required=False)
    if target_rps is not None and target_rps < 1:
        raise r.fail("endpoint.target_rps", f"must be at least 1, not {target_rps}")
    azure = r.get("azure", dict)
    for key, value in azure.items():
        if not isinstance(value, str):
            raise r.fail(f"azure.{key}", f"must be a string, not {value!r}")

    gate = None
    if "gate" in data:
        thresholds = r.get("gate.thresholds", dict)
        if not thresholds:
            raise r.fail("gate.thresholds", "is empty; a gate with no floor would pass anything")
        for metric, floor in thresholds.items():
            if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= 1:
                raise r.fail(
                    f"gate.thresholds.{metric}", f"must be a number from 0 to 1, not {floor!r}"
                )
        tolerance = r.get("gate.tolerance", (int, float))
        if not 0 <= tolerance < 1:
            raise r.fail("gate.tolerance", f"must be from 0 up to 1, not {tolerance!r}")
        gate = Gate({k: float(v) for k, v in thresholds.items()}, float(tolerance))

    monitor = None
    if "monitor" in data:
        monitor_psi = r.get("monitor.psi", (int, float))
        monitor_ks = r.get("monitor.ks", (int, float))
        min_rows = r.get("monitor.min_rows", int)
        if not 0 < monitor_psi <= 10:
            raise r.fail("monitor.psi", f"must be above 0 and at most 10, not {monitor_psi!r}")
        if not 0 < monitor_ks < 1:
            raise r.fail("monitor.ks", f"must be between 0 and 1, not {monitor_ks!r}")
        if min_rows < 1:
            raise r.fail("monitor.min_rows", f"must be at least 1, not {min_rows}")
        window = r.get("monitor.window", str, required=False) or Monitor.window
        try:
            window_module.since(window)
        except MlopsError as problem:
            raise r.fail("monitor.window", str(problem)) from None
        monitor = Monitor(float(monitor_psi), float(monitor_ks), min_rows, window)

    training_data = r.get("training.data", str, required=False)
    if training_data is not None and not (root / training_data).is_file():
        raise r.fail("training.data", f"names {training_data!r}, which is not a file")
    params = r.get("training.params", dict, required=False) or {}

    return EnvConfig(
        name=env,
        path=shown,
        model_name=model_name,
        model_version=version,
        endpoint_name=endpoint_name,
        instance_type=r.get("endpoint.instance_type", str),
        instance_count=instance_count,
        mirror_percent=mirror_percent,
        mirror_seconds=mirror_seconds,
        target_rps=target_rps,
        azure=dict(azure),
        training_data=training_data,
        training_params=dict(params),
        gate=gate,
        monitor=monitor,
    )
