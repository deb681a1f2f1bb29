"""The meta.json of a registered version (model or data), read through its checked shape
(state_files.DataMeta, state_files.ModelMeta) and held against what its folder implies.

A file edited by hand (`tags: []`, a number where a string belongs, another model's name) is
refused in one sentence naming the file and the field, never a traceback further on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from mlops.errors import MlopsError
from mlops.state import read_checked

M = TypeVar("M", bound=BaseModel)


def read_meta(path: Path, shape: type[M], **expected: object) -> M | None:
    """The file's metadata (None when there is none), its fields checked by shape and against
    expected, the values its folder implies."""
    data = read_checked(path, lambda found: shape.model_validate(found).model_dump(mode="json"))
    if data is None:
        return None
    meta = shape.model_validate(data)
    for field, value in expected.items():
        if getattr(meta, field) != value:
            raise MlopsError(
                f"{path}: field `{field}` is {getattr(meta, field)!r}, but its folder says "
                f"{value!r} (the registry's metadata was edited)"
            )
    return meta
