"""What an environment serves, and the exam a challenger sits against it.

The gate, promotion and monitoring read an environment's champion the same way:
its live endpoint's model, else its file's model.version. Any doubt (a split, an
unreadable endpoint, bytes that differ from the registry's) is returned as the
champion's problem, which the gate turns into a refusal.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from mlops import config as config_module
from mlops import exam
from mlops.backends.base import Deployment, Endpoint, ModelVersion
from mlops.context import Context
from mlops.data import training_data_of
from mlops.errors import GateRefused, MlopsError
from mlops.gate import Champion, GateResult, check_cohort_records, judge, judge_cohorts

TRAINING_ENV = config_module.TRAINING_ENV  # whose environment file names the training data


def parse_model_ref(ref: str) -> tuple[str, int]:
    name, sep, version = ref.partition(":")
    if not sep or not name or not (version.isdigit() and int(version) > 0):
        raise MlopsError(
            f"model {ref!r} must be written NAME:VERSION with a version number, "
            "e.g. breast-cancer-classifier:3"
        )
    return name, int(version)


def serving(endpoint: Endpoint | None) -> Deployment | None:
    """The deployment taking all of the endpoint's traffic, if one does."""
    return endpoint.sole_deployment if endpoint is not None else None


def resolve_shared(ctx: Context, env: str, model_ref: str | None) -> ModelVersion | None:
    """The model an environment should serve: --model, else its file's model.version, else None."""
    cfg = ctx.config(env)
    if model_ref is not None:  # an empty --model (an unset output) is refused, never "default"
        name, version = parse_model_ref(model_ref)
    elif cfg.model_version is None:
        return None
    else:
        name, version = cfg.model_name, cfg.model_version
    model = ctx.backend(env).get_shared_model(name, version)
    if model is None:
        raise MlopsError(f"the registry holds no model {name}:{version}")
    return model


def champion_of(ctx: Context, env: str) -> tuple[Champion, ModelVersion | None]:
    """What the environment serves: its live endpoint's model, else its file's model.version.

    Metrics are left empty here: the gate fills them from the exam. Any failure to
    read is returned as the champion's problem, which the gate turns into a refusal."""
    cfg = ctx.config(env)
    backend = ctx.backend(env)
    try:
        endpoint = backend.get_endpoint(cfg.endpoint_name)
    except Exception as exc:  # an unreadable champion refuses, never passes
        where = f"{env}'s endpoint {cfg.endpoint_name}"
        return Champion(f"the model {env} serves", None, f"reading {where} failed: {exc}"), None
    live = serving(endpoint)
    if endpoint is not None and endpoint.live is not None and live is None:
        split = ", ".join(f"{name} {pct}%" for name, pct in sorted(endpoint.traffic.items()))
        problem = f"its traffic is split ({split}), so which model is the champion is unclear"
        return Champion(f"the model {env} serves", None, problem, cfg.endpoint_name), None
    if live is not None:
        ref, source = live.model, f"{env}'s live endpoint ({cfg.endpoint_name}/{live.name})"
    elif cfg.model_version is not None:
        ref = f"{cfg.model_name}:{cfg.model_version}"
        source = f"{cfg.path.as_posix()} ({env} has no live endpoint)"
    else:
        return Champion(None, source=f"{cfg.path.as_posix()} and {env}'s endpoints"), None
    try:
        model = backend.get_shared_model(*parse_model_ref(ref))
    except Exception as exc:  # same rule: doubt refuses
        return Champion(ref, None, f"reading the registry failed: {exc}", source), None
    if model is None:
        return Champion(ref, None, "the registry holds no such model", source), None
    if live is not None and live.artifact_sha256 != model.artifact_sha256:
        problem = "the live deployment's bytes differ from the registry's"
        return Champion(ref, None, problem, source), None
    return Champion(ref, None, "not examined yet", source), model


def examine(ctx: Context, env: str, model_ref: str) -> GateResult:
    """The gate's judgement of a shared model against env's floors and champion, on one exam."""
    cfg = ctx.config(env)
    rules = cfg.require_gate()
    backend = ctx.backend(env)
    challenger = resolve_shared(ctx, env, model_ref)
    champion, champion_model = champion_of(ctx, env)
    ctx.say(f"champion: {champion.ref or 'none'}, read from {champion.source}")

    try:  # the data the challenger was trained on, by its lineage
        data = training_data_of(ctx, challenger.ref, challenger, env)
    except MlopsError as exc:
        raise GateRefused(f"{exc}: the gate cannot set the same exam, failing closed") from None
    paper = exam.paper_for(challenger, data, "the data its lineage names")
    with tempfile.TemporaryDirectory(prefix="mlops-exam-") as folder:
        try:  # bytes that differ from the challenger's lineage tags refuse it
            artifacts = {"challenger": backend.download_model(challenger, Path(folder))}
        except MlopsError as exc:
            raise GateRefused(f"{exc}; failing closed") from None
        if champion_model is not None:
            try:
                artifacts["champion"] = backend.download_model(champion_model, Path(folder))
            except MlopsError as exc:
                champion, champion_model = replace(champion, problem=str(exc)), None
        scores = exam.sit(ctx.root, paper, artifacts)
    if champion_model is not None:
        champion = replace(champion, metrics=scores.metrics["champion"], problem=None)
    shown_paper = paper.describe(ctx.root)
    ctx.say(f"exam: {' and '.join(scores.metrics)} scored on the held-out rows of {shown_paper}")
    groups = scores.cohorts.get("challenger", {})
    check_cohort_records(challenger.ref, challenger.tags, rules, set(groups))
    figures = exam.recorded_figures(challenger, scores.metrics["challenger"])
    verdict = judge(figures, champion, rules)
    judge_cohorts(verdict, challenger.tags, groups, rules)
    return GateResult(
        challenger, champion, champion_model, figures, shown_paper, verdict, cohorts=groups
    )


def serving_check(ctx: Context, env: str, model: ModelVersion) -> str:
    """One sentence saying that env's deployment taking all traffic serves exactly this model.

    Anything else refuses: nothing served, a split, another version, other bytes, or an
    endpoint that cannot be read."""
    cfg = ctx.config(env)
    try:
        endpoint = ctx.backend(env).get_endpoint(cfg.endpoint_name)
    except MlopsError:
        raise
    except Exception as exc:  # e.g. no read access: doubt refuses
        raise GateRefused(f"reading {env}'s endpoint {cfg.endpoint_name} failed: {exc}") from None
    live = serving(endpoint)
    if live is None:
        raise GateRefused(
            f"no deployment of {env} takes all its traffic, so {model.ref} cannot be promoted: "
            f"prod takes only what {env} serves (deploy it there first)"
        )
    if live.model != model.ref or live.artifact_sha256 != model.artifact_sha256:
        raise GateRefused(
            f"{env}'s live deployment {live.name!r} serves {live.model} "
            f"(sha256 {live.artifact_sha256[:12]}…), not {model.ref} "
            f"(sha256 {model.artifact_sha256[:12]}…): prod takes only what {env} serves"
        )
    return (
        f"{env}'s live deployment `{cfg.endpoint_name}/{live.name}` serves `{model.ref}` "
        f"with the same model.onnx (sha256 `{model.artifact_sha256}`)"
    )
