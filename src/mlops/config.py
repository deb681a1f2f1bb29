"""Settings of one deployment environment, read from environments/<env>.yml.

The file's shape is declared once, as pydantic models: an unknown key, a value
of the wrong type or out of bounds is refused in one sentence naming the file,
the field and the value, never a traceback.
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops import files, metric_ranges
from mlops import window as window_module
from mlops.errors import ConfigError, MlopsError

ENVIRONMENTS = ("dev", "preprod", "prod")
TRAINING_ENV = "dev"  # whose workspace trains and keeps the training data asset versions
LATEST = "latest"  # training.data.version: the newest version, resolved once by `mlops train`
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
DEFAULT_WINDOW = "7d"  # how far back `mlops monitor` looks unless --since says otherwise
DEFAULT_MIN_LABELS = 100  # labelled rows the monitor needs before it judges performance
AT_LEAST, AT_MOST = "at_least", "at_most"  # a gated metric's bound says which way is better


@dataclass(frozen=True)
class CohortBounds:
    """One cohort's bounds (src/model/features.py COHORTS): in every group with at least
    min_rows of support, each metric within its bound (a floor, or a ceiling for a metric
    where lower is better); the largest gap between those groups within max_gap."""

    min_rows: int
    bounds: dict[str, float] = field(default_factory=dict)
    max_gap: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        return sorted(set(self.bounds) | set(self.max_gap))


@dataclass(frozen=True)
class Gate:
    thresholds: dict[str, float]
    tolerance: float
    # Metrics whose smaller values are better (errors such as rmse); the others: higher is better.
    lower_is_better: frozenset[str] = frozenset()
    cohorts: dict[str, CohortBounds] = field(default_factory=dict)

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better


@dataclass(frozen=True)
class TrainingData:
    """The training data as a data asset version (`version` None: the newest, resolved once)."""

    asset: str
    version: int | None
    initial: str | None = None  # the committed file that becomes version 1 of an empty asset

    @property
    def shown(self) -> str:
        return f"{self.asset}:{self.version or LATEST}"


@dataclass(frozen=True)
class Monitor:
    psi: float
    ks: float
    min_rows: int
    window: str = DEFAULT_WINDOW
    labels: str | None = None  # a folder of label CSV files (request_id,label), repo-relative
    min_labels: int = DEFAULT_MIN_LABELS  # fewer labelled rows are reported, not judged


# Azure's ceiling on instances of one managed online deployment (raisable by a support request):
# learn.microsoft.com/azure/machine-learning/how-to-manage-quotas, "Number of instances per
# deployment: 50".
MAX_INSTANCES = 50


@dataclass(frozen=True)
class Autoscale:
    """How a deployment scales: between min and max instances, on its average CPU."""

    min_instances: int
    max_instances: int
    cpu_percent: int  # scale out above it, in below half of it
    default_instances: int  # the count it starts with (the environment's instance_count)


@dataclass(frozen=True)
class Alerts:
    """When the environment's endpoint alerts (Azure Monitor rules the infra stacks create)."""

    latency_ms: int  # P95 request latency above this
    error_rate: float  # share of requests answered 5xx above this
    cpu_percent: float  # a deployment's CPU use above this
    memory_percent: float  # a deployment's memory use above this


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
    autoscale: Autoscale | None = None  # applied by each rollout to the new deployment
    training_data: TrainingData | None = None
    training_params: dict[str, Any] = field(default_factory=dict)
    gate: Gate | None = None
    monitor: Monitor | None = None
    events_webhook: str | None = None  # where lifecycle events are posted (events.py)
    alerts: Alerts | None = None  # None: no endpoint alert rules in this environment

    def require_gate(self) -> Gate:
        if self.gate is None:
            raise ConfigError(f"{self.path.name}: no `gate` section; the gate needs thresholds")
        return self.gate

    def require_monitor(self) -> Monitor:
        if self.monitor is None:
            raise ConfigError(f"{self.path.name}: no `monitor` section; drift needs thresholds")
        return self.monitor


# The file's schema. Strict: YAML already gives typed values, so "20" is not 20 and true is not 1.
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_a_mapping(cls, data: object) -> object:
        return {} if data is None else data  # `gate:` alone: its settings are missing, not absent


def _checked_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"must be 3-32 lowercase letters, digits or dashes, not {value!r}")
    return value


class _Model(_Section):
    name: str
    # A version number or nothing: "latest" would make two readers at two times see two models.
    version: int | None = None

    _name = field_validator("name")(_checked_name)

    @field_validator("version", mode="before")
    @classmethod
    def _a_version_number(cls, value: object) -> object:
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(
                f"must be a version number (a positive integer) or empty, not {value!r}"
            )
        return value


class _Autoscale(_Section):
    min_instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES)]
    max_instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES)]
    cpu_percent: Annotated[int, Field(gt=0, lt=100)]

    @model_validator(mode="after")
    def _ordered(self) -> _Autoscale:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"has min_instances {self.min_instances} above max_instances {self.max_instances}"
            )
        return self


class _Alerts(_Section):
    # at most an hour: no online request waits that long, so more is a unit slip
    latency_ms: Annotated[int, Field(ge=1, le=3_600_000)]
    error_rate: Annotated[float, Field(gt=0, lt=1)]
    cpu_percent: Annotated[float, Field(gt=0, le=100)]
    memory_percent: Annotated[float, Field(gt=0, le=100)]


class _Endpoint(_Section):
    name: str
    instance_type: str
    instance_count: Annotated[int, Field(ge=1)]
    mirror_percent: Annotated[int, Field(ge=0, le=50)] = 0
    mirror_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    target_rps: Annotated[int, Field(ge=1)] | None = None
    autoscale: _Autoscale | None = None
    alerts: _Alerts | None = None

    _name = field_validator("name")(_checked_name)

    @model_validator(mode="after")
    def _error_rate_needs_a_load(self) -> _Endpoint:
        # Azure Monitor compares one metric to a threshold: the 5xx rule counts errors per
        # minute against error_rate x target_rps x 60, so it needs the load to be named.
        if self.alerts is not None and self.target_rps is None:
            raise ValueError(
                "has `alerts` but no `target_rps`: alerts.error_rate is a share of that "
                "load, so name the peak requests per second"
            )
        return self


class _Data(_Section):
    asset: str
    version: int | str
    initial: str | None = None

    _asset = field_validator("asset")(_checked_name)

    @field_validator("version", mode="before")
    @classmethod
    def _a_version(cls, value: object) -> object:
        if value != LATEST and (type(value) is not int or value < 1):
            raise ValueError(
                f"must be a version number (a positive integer) or {LATEST}, not {value!r}"
            )
        return value


class _Training(_Section):
    data: _Data | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data", mode="before")
    @classmethod
    def _an_asset(cls, value: object) -> object:
        if isinstance(value, str):  # the form before data assets were versioned
            raise ValueError(
                f"must name a data asset version as {{asset: NAME, version: N or {LATEST}}}, "
                f"not the file {value!r} (`mlops data register` makes a file a version)"
            )
        return value


class _Bound(_Section):
    """One gated metric: the floor it must reach (higher is better) or the ceiling it must stay
    under (lower is better). Exactly one, so the direction is always said, never assumed."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _Bound:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(
                f"must give exactly one of {AT_LEAST} (higher is better) "
                f"or {AT_MOST} (lower is better)"
            )
        return self


class _CohortBounds(_Section):
    min_rows: Annotated[int, Field(ge=1)]
    bounds: dict[str, float] = Field(default_factory=dict)
    max_gap: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounds_something(self) -> _CohortBounds:
        if not self.bounds and not self.max_gap:
            raise ValueError(
                "has neither bounds nor max_gap; a cohort with no bound judges nothing"
            )
        return self


class _Gate(_Section):
    thresholds: dict[str, _Bound]
    tolerance: Annotated[float, Field(ge=0, lt=1)]
    cohorts: dict[str, _CohortBounds] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _not_empty(cls, value: dict) -> dict:
        if not value:
            raise ValueError("is empty; a gate with no floor would pass anything")
        return value


class _Monitor(_Section):
    psi: Annotated[float, Field(gt=0, le=10)]
    ks: Annotated[float, Field(gt=0, lt=1)]
    min_rows: Annotated[int, Field(ge=1)]
    window: str = DEFAULT_WINDOW
    labels: str | None = None
    min_labels: Annotated[int, Field(ge=1)] = DEFAULT_MIN_LABELS

    @field_validator("window")
    @classmethod
    def _a_window(cls, value: str) -> str:
        try:
            window_module.since(value)
        except MlopsError as problem:
            raise ValueError(str(problem)) from None
        return value


class _Events(_Section):
    webhook: str | None = None

    @field_validator("webhook")
    @classmethod
    def _a_webhook(cls, value: str | None) -> str | None:
        from mlops.events import checked_webhook

        return None if value is None else checked_webhook(value)


class _EnvFile(_Section):
    environment: str
    azure: dict[str, str]
    model: _Model
    endpoint: _Endpoint
    training: _Training = Field(default_factory=_Training)
    gate: _Gate | None = None
    monitor: _Monitor | None = None
    events: _Events = Field(default_factory=_Events)


def environments_dir(root: Path) -> Path:
    return root / "environments"


def load(env: str, root: Path) -> EnvConfig:
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {', '.join(ENVIRONMENTS)}")
    path = environments_dir(root) / f"{env}.yml"
    shown = (Path("environments") / path.name).as_posix()
    if not path.is_file():
        raise ConfigError(f"{shown}: file not found under {root}")
    try:  # not UTF-8, not YAML, a key written twice: one sentence naming the line
        data = files.load_yaml(path, shown)
    except MlopsError as problem:
        raise ConfigError(str(problem)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: must be a mapping of settings")
    try:
        settings = _EnvFile.model_validate(data)
    except ValidationError as invalid:
        # an unknown key first: a typo of a required key also reports that key missing
        errors = sorted(invalid.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise ConfigError(f"{shown}: {_sentence(errors[0])}") from None

    def fail(dotted: str, problem: str) -> ConfigError:
        return ConfigError(f"{shown}: field `{dotted}` {problem}")

    if settings.environment != env:
        raise fail("environment", f"says {settings.environment!r} but the file is {path.name}")
    data = _training_data(settings.training.data, env, fail, root)
    if settings.gate is not None:
        ranges = metric_ranges.of(root)
        for metric, bound in settings.gate.thresholds.items():
            side, value = (
                (AT_LEAST, bound.at_least) if bound.at_most is None else (AT_MOST, bound.at_most)
            )
            if problem := metric_ranges.problem(metric, value, ranges):
                raise fail(f"gate.thresholds.{metric}.{side}", problem)
    endpoint = settings.endpoint
    scale = endpoint.autoscale
    if scale and not scale.min_instances <= endpoint.instance_count <= scale.max_instances:
        raise fail(
            "endpoint.instance_count",
            f"is {endpoint.instance_count}, outside endpoint.autoscale's "
            f"{scale.min_instances}..{scale.max_instances}; a deployment starts within its bounds",
        )
    return EnvConfig(
        name=env,
        path=Path(shown),
        model_name=settings.model.name,
        model_version=settings.model.version,
        endpoint_name=endpoint.name,
        instance_type=endpoint.instance_type,
        instance_count=endpoint.instance_count,
        mirror_percent=endpoint.mirror_percent,
        mirror_seconds=endpoint.mirror_seconds,
        target_rps=endpoint.target_rps,
        autoscale=Autoscale(**scale.model_dump(), default_instances=endpoint.instance_count)
        if scale
        else None,
        azure=dict(settings.azure),
        training_data=data,
        training_params=dict(settings.training.params),
        gate=_gate(settings.gate, fail) if settings.gate else None,
        monitor=Monitor(**settings.monitor.model_dump()) if settings.monitor else None,
        events_webhook=settings.events.webhook,
        alerts=Alerts(**endpoint.alerts.model_dump()) if endpoint.alerts else None,
    )


def _training_data(section: _Data | None, env: str, fail, root: Path) -> TrainingData | None:
    if section is None:
        return None
    if section.version == LATEST and env != TRAINING_ENV:
        # other environments name what they used exactly: latest moves under their feet
        raise fail(
            "training.data.version",
            f"may say {LATEST} only in {TRAINING_ENV}.yml, not in {env}.yml; name a version number",
        )
    if section.initial is not None and not (root / section.initial).is_file():
        raise fail("training.data.initial", f"names {section.initial!r}, which is not a file")
    version = None if section.version == LATEST else section.version
    return TrainingData(section.asset, version, section.initial)


def _gate(section: _Gate, fail) -> Gate:
    thresholds = {
        metric: bound.at_least if bound.at_least is not None else bound.at_most
        for metric, bound in section.thresholds.items()
    }
    lower = frozenset(m for m, bound in section.thresholds.items() if bound.at_most is not None)
    return Gate(thresholds, section.tolerance, lower, _cohorts(section, fail))


_COHORT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as src/model/features.py names them


def _cohorts(section: _Gate, fail) -> dict[str, CohortBounds]:
    """Cohort bounds name cohorts as tags can, and only metrics the gate has a threshold for:
    a metric of no threshold has no direction and no recorded figure to judge."""
    gated = sorted(section.thresholds)
    found = {}
    for cohort, rules in section.cohorts.items():
        if not _COHORT_NAME.match(cohort):
            raise fail(f"gate.cohorts.{cohort}", "must be a cohort's name: letters, digits, _ or -")
        for key in ("bounds", "max_gap"):
            for metric in getattr(rules, key):
                if metric not in section.thresholds:
                    raise fail(
                        f"gate.cohorts.{cohort}.{key}.{metric}",
                        f"is not a gated metric (gate.thresholds has {', '.join(gated)})",
                    )
        found[cohort] = CohortBounds(rules.min_rows, dict(rules.bounds), dict(rules.max_gap))
    return found


# pydantic's error types, said as the end of a sentence about one field
_KINDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "dict_type": "a mapping of settings",
    "model_type": "a mapping of settings",
    "bool_type": "true or false",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "above"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "below"),
}


def _sentence(error: dict) -> str:
    """One pydantic error as `field `a.b` <problem>` (or, for an unknown key, a suggestion)."""
    loc = tuple(str(part) for part in error["loc"])
    dotted, kind, value = ".".join(loc), error["type"], error.get("input")
    if kind == "extra_forbidden":
        known = _fields_at(_EnvFile, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        return f"{dotted} is not a known setting ({hint})"
    if kind == "missing":
        problem = "is missing"
    elif kind == "value_error":
        problem = str(error["ctx"]["error"])
    elif kind in _KINDS:
        problem = f"must be {_KINDS[kind]}, not {value!r}"
    elif kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        problem = f"must be {words} {error['ctx'][key]:g}, not {value!r}"
    else:  # a rule without its own wording: pydantic's, which names the rule
        problem = f"is {value!r}: {error['msg']}"
    return f"field `{dotted}` {problem}"


def _fields_at(model: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    """The setting names the schema knows at path (through sections and mappings)."""
    node: Any = model
    for part in path:
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = _optional_of(node.model_fields[part].annotation)
        elif get_origin(node) is dict:
            node = _optional_of(get_args(node)[1])
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _optional_of(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation
