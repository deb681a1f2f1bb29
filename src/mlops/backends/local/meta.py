"""The meta.json of a registered version (model or data), read through one validated shape.

A file edited by hand (`tags: []`, a number where a string belongs, another model's name) is
refused in one sentence naming the file and the field, never a traceback further on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops.errors import MlopsError
from mlops.state import read_json


class _Meta(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    tags: dict[str, str]


class ModelMeta(_Meta):
    name: str
    version: int
    artifact_sha256: str


class DataMeta(_Meta):
    file: str


M = TypeVar("M", bound=_Meta)


def read_meta(path: Path, shape: type[M], **expected: object) -> M | None:
    """The file's metadata (None when there is none), its fields checked by shape and against
    expected, the values its folder implies."""
    data = read_json(path)
    if data is None:
        return None
    try:
        meta = shape.model_validate(data)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "the file"
        raise MlopsError(
            f"{path}: field `{field}` {error['msg'].lower()} (the registry's metadata was edited)"
        ) from None
    for field, value in expected.items():
        if getattr(meta, field) != value:
            raise MlopsError(
                f"{path}: field `{field}` is {getattr(meta, field)!r}, but its folder says "
                f"{value!r} (the registry's metadata was edited)"
            )
    return meta
