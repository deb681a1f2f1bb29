"""A registered version's model card, as stored with it, completed with what the lifecycle
knows: the version's name, the lineage its registry tags keep and the gate's verdict.

The evaluate step writes card.json and card.md beside model.onnx (src/model/card.py), so the
card is one of the version's files on both backends and travels with `share`, whose copy of a
version keeps its files. The gate records its verdict on the shared version as the tag
`gate.<env>` (compact JSON). Rendering stays with src/model/card.py, run as a subprocess,
so the Markdown the evaluate step wrote and the one printed here are made by one function.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mlops import clock
from mlops.backends.base import (
    TAG_DATA,
    TAG_DATA_ASSET,
    TAG_DATA_VERSION,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
    ModelVersion,
)
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.gate import Verdict
from mlops.paths import MODEL_CODE

CARD_SCRIPT = MODEL_CODE / "card.py"
CARD_JSON = "card.json"  # as src/model/card.py names it
VERDICT_PREFIX = "gate."  # the tag gate.<env>: the gate's last verdict for that environment
TIMEOUT_S = 60


def verdict_tag(env: str, verdict: Verdict) -> tuple[str, str]:
    """The gate's verdict as the tag a version keeps: which environment, when, why."""
    value = {
        "environment": env,
        "passed": verdict.passed,
        "time": clock.now().isoformat(timespec="seconds"),
        "reasons": verdict.reasons,
    }
    return f"{VERDICT_PREFIX}{env}", json.dumps(value, separators=(",", ":"))


def record_verdict(ctx: Context, env: str, model: ModelVersion, verdict: Verdict) -> None:
    """Keep the verdict on the shared version; an identity that cannot tag gets a warning, as
    the audit trail does (mlops.history): the verdict is also in the events log."""
    key, value = verdict_tag(env, verdict)
    try:
        ctx.backend(env).tag_shared_model(model, {key: value})
    except MlopsError as refused:
        ctx.say(f"warning: the gate's verdict is not on {model.ref} in the registry: {refused}")


def card_of(ctx: Context, env: str, model: ModelVersion, verdict: dict | None = None) -> dict:
    """The version's card from its files, completed from its tags; verdict, when given,
    replaces the one its tags keep (the promotion renders the verdict it just reached)."""
    with tempfile.TemporaryDirectory(prefix="mlops-card-") as folder:
        onnx = ctx.backend(env).download_model(model, Path(folder))
        path = onnx.parent / CARD_JSON
        try:
            card = json.loads(path.read_text())
        except FileNotFoundError:
            raise MlopsError(
                f"{model.ref} carries no {CARD_JSON}: it was registered before the evaluate "
                "step wrote model cards"
            ) from None
        except ValueError:
            raise MlopsError(f"{model.ref}: its {CARD_JSON} is not JSON") from None
    tags = model.tags
    card["model"] = model.ref
    card.setdefault("data", {})["asset_version"] = (
        f"{tags[TAG_DATA_ASSET]}:{tags[TAG_DATA_VERSION]}" if TAG_DATA_ASSET in tags else None
    )
    card["lineage"] = {
        **(card.get("lineage") or {}),
        "commit": tags.get(TAG_GIT),
        "job": tags.get(TAG_JOB),
        "run": tags.get(TAG_RUN),
        "data_sha256": tags.get(TAG_DATA),
        "artifact_sha256": model.artifact_sha256,
    }
    if verdict is None:
        try:
            verdict = json.loads(tags.get(f"{VERDICT_PREFIX}{env}", "null"))
        except ValueError:
            verdict = None
    card["verdict"] = verdict if isinstance(verdict, dict) else None
    return card


def render(root: Path, card: dict) -> str:
    """The card as Markdown."""
    return _run(root, "render", card)


def compare(root: Path, challenger: dict, champion: dict | None) -> str:
    """Both cards side by side, what differs marked, then each card whole."""
    return _run(root, "compare", {"challenger": challenger, "champion": champion})


def _run(root: Path, action: str, given: dict) -> str:
    try:
        done = subprocess.run(
            [sys.executable, str(root / CARD_SCRIPT), action],
            cwd=root / CARD_SCRIPT.parent,
            input=json.dumps(given),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise MlopsError(f"rendering the model card took over {TIMEOUT_S}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MlopsError(f"{CARD_SCRIPT.as_posix()} could not render the card ({last})")
    return done.stdout


def show(ctx: Context, env: str, model_ref: str) -> str:
    """`mlops card`: the shared version's card, printed."""
    from mlops.champion import parse_model_ref

    name, version = parse_model_ref(model_ref)
    model = ctx.backend(env).get_shared_model(name, version)
    if model is None:
        raise MlopsError(f"the registry holds no model {name}:{version}")
    text = render(ctx.root, card_of(ctx, env, model))
    print(text, end="")
    return text
