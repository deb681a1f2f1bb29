"""The shapes of the local backend's state files, checked on every read (state.read_checked):
endpoint.json (online and batch), a data or model version's meta.json (read by meta.py), a
job's job.json and a cached step's step.json.

Commands and the endpoint's router read them through these models, so a file edited by hand,
written by another tool or cut short is refused in one sentence naming the file and the
field, never half-used. Unknown fields are kept as they are (a newer version may add some).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

Port = Annotated[int, Field(ge=1, le=65535)]
Pid = Annotated[int, Field(ge=1)]
Share = Annotated[int, Field(ge=0, le=100)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class InstanceRecord(_Record):
    """A server instance beyond a deployment's first (its autoscale floor)."""

    pid: Pid | None = None
    port: Port | None = None


class AutoscaleRecord(_Record):
    """config.Autoscale, as set_autoscale recorded it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    min_instances: int
    max_instances: int
    cpu_percent: int
    default_instances: int


class DeploymentRecord(_Record):
    status: str
    pid: Pid | None = None
    port: Port | None = None
    marker: Annotated[str, Field(min_length=1)]  # on the server's command line: its identity
    model: str
    artifact_sha256: str
    folder: Annotated[str, Field(min_length=1)]
    replicas: list[InstanceRecord] = []
    autoscale: AutoscaleRecord | None = None


class EndpointRecord(_Record):
    name: Annotated[str, Field(min_length=1)]
    port: Port | None = None
    key: str | None = None
    internal_token: str | None = None  # what the router shows its deployments' servers
    router_pid: Pid | None = None
    traffic: dict[str, Share] = {}
    mirror_traffic: dict[str, Share] = {}
    deployments: dict[str, DeploymentRecord] = {}

    @model_validator(mode="after")
    def _shares_go_to_deployments(self) -> EndpointRecord:
        """A share of traffic or of the mirror names one of the endpoint's deployments, as
        Azure ML refuses traffic to a deployment that does not exist: the router would have
        nowhere to send it, and the verbs no model to name."""
        for field in ("traffic", "mirror_traffic"):
            unknown = sorted(set(getattr(self, field)) - set(self.deployments))
            if unknown:
                raise PydanticCustomError(
                    "unknown_deployment",
                    "{field} names {name}, which is none of the endpoint's deployments",
                    {"field": field, "name": repr(unknown[0])},
                )
        return self


def checked(data: dict) -> dict:
    """The state as plain JSON data once it has the shape above (pydantic.ValidationError if
    not); absent optional fields come back as their defaults."""
    return EndpointRecord.model_validate(data).model_dump(mode="json")


class BatchDeploymentRecord(_Record):
    model: str
    artifact_sha256: str
    model_dir: Annotated[str, Field(min_length=1)]


class BatchEndpointRecord(_Record):
    default: str | None = None
    deployments: dict[str, BatchDeploymentRecord] = {}


def checked_batch(data: dict) -> dict:
    """A batch endpoint's state, as checked does an online one's."""
    return BatchEndpointRecord.model_validate(data).model_dump(mode="json")


class DataMeta(_Record):
    """A data version's meta.json."""

    file: Annotated[str, Field(min_length=1)]
    tags: dict[str, str] = {}


class ModelMeta(_Record):
    """A registered model version's meta.json."""

    name: str
    version: int
    artifact_sha256: str
    tags: dict[str, str] = {}


class JobRecord(_Record):
    id: str
    run_id: str | None = None
    status: str


class StepRecord(_Record):
    job: str


def checked_job(data: dict) -> dict:
    return JobRecord.model_validate(data).model_dump(mode="json")


def checked_step(data: dict) -> dict:
    return StepRecord.model_validate(data).model_dump(mode="json")
