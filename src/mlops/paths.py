"""Where the project and its local state live."""

from __future__ import annotations

import os
from pathlib import Path

# The data scientist's folder: the code snapshot a job uploads and a deployment serves.
MODEL_CODE = Path("src") / "model"


def project_root() -> Path:
    """The checkout: MLOPS_ROOT if set, else the nearest folder above cwd with environments/."""
    if "MLOPS_ROOT" in os.environ:
        return Path(os.environ["MLOPS_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "environments").is_dir() and (folder / MODEL_CODE).is_dir():
            return folder
    return here


def state_home(root: Path | None = None) -> Path:
    """Local backend state: MLOPS_HOME if set, else .mlops/ in the checkout (git-ignored)."""
    if "MLOPS_HOME" in os.environ:
        return Path(os.environ["MLOPS_HOME"]).resolve()
    return (root or project_root()) / ".mlops"
