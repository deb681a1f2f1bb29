"""The lifecycle verbs, each one step of the data flow, the same for every backend.

What a later verb needs is handed to it explicitly: `train` prints (and writes
as a step output) the job id that `register --job` takes, `register` and
`share` the NAME:VERSION that `gate`, `deploy` and `promote` take. Nothing is
remembered between verbs and nothing resolves "latest", so one release acts on
one model from the job that made it to prod. Each verb returns what it made or
found; the command line decides how to show it.
"""

from __future__ import annotations

from pathlib import Path

from mlops import card as card_module
from mlops import config as config_module
from mlops import data as data_module
from mlops import events, feedback, history, interrupted, lineage
from mlops.backends.base import Backend, Endpoint, Job, ModelVersion, TrainingSpec
from mlops.champion import (
    champion_of,
    examine,
    parse_model_ref,
    resolve_shared,
    serving,
    serving_check,
)
from mlops.context import Context
from mlops.errors import EndpointTestFailed, GateRefused, MlopsError, RolloutFailed
from mlops.gate import GateResult
from mlops.github import set_outputs
from mlops.locks import endpoint_lock
from mlops.monitor import (
    CHART_FILE,
    REPORT_FILE,
    DriftResult,
    load_reference,
    measure,
    plot,
    report_markdown,
    retrain_reason,
)
from mlops.paths import MODEL_CODE
from mlops.profile import Profile, advice, profile
from mlops.promotion import PROD_FILE, render
from mlops.rollout import RolloutResult, rollout
from mlops.smoke import SmokeResult, load_contract, load_sample, smoke_test
from mlops.state import write_json
from mlops.window import since

PROMOTED_FROM = "preprod"  # prod takes only what this environment serves

__all__ = [
    "Context",
    "champion_of",
    "deploy",
    "down",
    "endpoint_key",
    "examine",
    "gate",
    "monitor",
    "parse_model_ref",
    "profile_endpoint",
    "promote",
    "register",
    "share",
    "status",
    "test",
    "train",
]


# ---- train, register, share ----------------------------------------------------------


def train(ctx: Context, env: str, data_ref: str | None = None) -> Job:
    """Train on the data version training.data names (or data_ref, NAME:VERSION), resolved
    once here: the job, its run and the model registered from it record that version."""
    cfg = ctx.config(env)
    if cfg.training_data is None:
        raise MlopsError(
            f"{cfg.path.as_posix()}: no `training.data`; {env} is not a training environment"
        )
    named = cfg.training_data
    if data_ref is not None:
        named = config_module.TrainingData(*data_module.parse_data_ref(data_ref))
    data = data_module.resolve(ctx, env, named)
    ctx.say(f"training on data {data.ref} (sha256 {data.sha256[:12]}…)")
    spec = TrainingSpec(
        code_dir=str(ctx.root / MODEL_CODE),
        data_path=data.location,
        params=cfg.training_params,
        experiment=cfg.model_name,
        git_commit=lineage.git_commit(ctx.root),
        data_asset=data.name,
        data_version=data.version,
    )
    try:
        job = ctx.backend(env).run_training_job(spec)
    except Exception as failed:
        ctx.emit(
            events.TRAINING_FAILED,
            env,
            data=data.ref,
            error=str(failed).splitlines()[0] if str(failed) else type(failed).__name__,
        )
        raise
    ctx.emit(events.TRAINING_COMPLETED, env, job=job.id, data=data.ref, metrics=job.metrics)
    ctx.say(f"job {job.id} completed on data {data.ref}: run {job.run_id}")
    ctx.say("metrics " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(job.metrics.items())))
    for line in lineage.cohort_lines(job.cohort_tags):
        ctx.say(line)
    ctx.say(f"next: mlops register --env {env} --job {job.id}")
    set_outputs(data=data.ref, job=job.id)
    return job


def register(ctx: Context, env: str, job_id: str) -> ModelVersion:
    cfg = ctx.config(env)
    backend = ctx.backend(env)
    job = backend.get_job(job_id)
    # One artifact, one version: a job that made the same model.onnx again reuses its version.
    same = [
        found
        for found in backend.list_model_versions(cfg.model_name)
        if found.artifact_sha256 == job.artifact_sha256
    ]
    if same:
        model = min(same, key=lambda found: found.version)
        ctx.say(
            f"{model.ref} already holds these bytes "
            f"(sha256 {model.artifact_sha256[:12]}…): not registered again"
        )
    else:
        model = backend.create_model_version(job, cfg.model_name, lineage.model_tags(job))
        ctx.say(f"registered {model.ref} from run {job.run_id}")
        ctx.emit(events.MODEL_REGISTERED, env, model.ref, model.artifact_sha256, job=job.id)
    set_outputs(model=model.ref)
    return model


def share(ctx: Context, env: str, model_ref: str) -> ModelVersion:
    backend = ctx.backend(env)
    name, version = parse_model_ref(model_ref)
    source = backend.get_registered_model(name, version)
    if source is None:
        raise MlopsError(f"{name}:{version} is not registered in {env}")
    data_module.share_training_data(ctx, env, source)  # first: a shared model's data is there
    # A shared NAME:VERSION is never overwritten: other environments may serve it.
    shared = backend.get_shared_model(name, version)
    if shared is None:
        shared, verb = backend.share_model(source), "shared"
        ctx.emit(events.MODEL_SHARED, env, shared.ref, shared.artifact_sha256)
    lost = {k: v for k, v in source.tags.items() if shared.tags.get(k) != v}
    if lost and shared.artifact_sha256 == source.artifact_sha256:
        # The gate, the card and the monitor read the lineage, metric and cohort tags from
        # the registry's copy: any the copy lacks are put back (tags of a version may change).
        shared = backend.tag_shared_model(shared, lost)
    elif shared.artifact_sha256 != source.artifact_sha256:
        raise MlopsError(
            f"the registry already holds {shared.ref} with other bytes "
            f"(sha256 {shared.artifact_sha256[:12]}…); refusing to overwrite it"
        )
    else:
        verb = "already in the registry:"
    ctx.say(f"{verb} {shared.ref} (sha256 {shared.artifact_sha256[:12]}…)")
    set_outputs(model=shared.ref)
    return shared


# ---- gate and promotion --------------------------------------------------------------


def gate(ctx: Context, env: str, model_ref: str) -> GateResult:
    """Examine the model and refuse it (exit 3) unless the verdict passes."""
    result = examine(ctx, env, model_ref)
    for reason in result.verdict.reasons:
        ctx.say(reason)
    set_outputs(model=result.challenger.ref, passed=str(result.verdict.passed).lower())
    ctx.emit(
        events.MODEL_GATED,
        env,
        result.challenger.ref,
        result.challenger.artifact_sha256,
        passed=result.verdict.passed,
        reasons=list(result.verdict.reasons),
    )
    card_module.record_verdict(ctx, env, result.challenger, result.verdict)
    if not result.verdict.passed:
        raise GateRefused(f"the gate refused {result.challenger.ref} for {env}")
    ctx.say(f"the gate lets {result.challenger.ref} through to {env}")
    return result


def promote(ctx: Context, env: str, model_ref: str, write: bool = False) -> Path | None:
    """Render the promotion pull request; with write=True also change environments/prod.yml."""
    cfg = ctx.config(env)
    if cfg.path.as_posix() != PROD_FILE:
        raise MlopsError(f"a promotion pull request changes {PROD_FILE}; use --env prod")
    candidate = resolve_shared(ctx, env, model_ref)
    checked = serving_check(ctx, PROMOTED_FROM, candidate)
    ctx.say(checked.replace("`", ""))
    result = gate(ctx, env, model_ref)
    if cfg.model_version == result.challenger.version:
        ctx.say(f"{env} already names {result.challenger.ref}: nothing to promote")
        set_outputs(title="")
        return None
    checked = serving_check(ctx, PROMOTED_FROM, candidate)  # again: the exam took a while
    prod_path = ctx.root / cfg.path
    data = data_module.comparison(ctx, result.challenger, result.champion_model, env)
    promotion = render(prod_path.read_text(), result, checked, data)
    cards = model_cards(ctx, env, result)  # before anything is written: a card must be readable
    previous = history.entries(ctx, env)  # linked from the pull request body
    history.record(ctx, env, history.PROMOTED, candidate)
    folder = ctx.home / "promotion"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Path(PROD_FILE).name).write_text(promotion.new_text)
    (folder / "prod.yml.diff").write_text(promotion.diff)
    (folder / "pr-title.txt").write_text(promotion.title + "\n")
    (folder / "pr-body.md").write_text(promotion.body + cards + history.markdown(previous))
    if write:
        prod_path.write_text(promotion.new_text)
        ctx.say(f"wrote {cfg.path.as_posix()}")
    for line in promotion.diff.splitlines():
        ctx.say(line)
    ctx.say(f"pull request title and body: {folder / 'pr-title.txt'}, {folder / 'pr-body.md'}")
    set_outputs(title=promotion.title, body_path=str(folder / "pr-body.md"))
    return folder


def model_cards(ctx: Context, env: str, result: GateResult) -> str:
    """The promotion's section of model cards: the challenger's (with the verdict just reached)
    beside the champion's, what differs marked."""
    verdict = {
        "environment": env,
        "passed": result.verdict.passed,
        "reasons": list(result.verdict.reasons),
    }
    ours = card_module.card_of(ctx, env, result.challenger, verdict)
    theirs, note = None, ""
    if result.champion_model is not None:
        try:
            theirs = card_module.card_of(ctx, env, result.champion_model)
        except MlopsError as missing:  # an older champion: said, and the challenger's shown
            note = f"The champion's card cannot be shown: {missing}.\n\n"
    table = card_module.compare(ctx.root, ours, theirs)
    return f"\n## Model cards\n\n{note}{table}"


# ---- deploy, test, status, down ------------------------------------------------------------


def _live_endpoint(ctx: Context, env: str) -> tuple[config_module.EnvConfig, Backend, Endpoint]:
    """The environment's endpoint, which must have a deployment taking traffic."""
    cfg = ctx.config(env)
    backend = ctx.backend(env)
    interrupted.recover(ctx, env, cfg.endpoint_name)
    endpoint = backend.get_endpoint(cfg.endpoint_name)
    if endpoint is None or endpoint.live is None:
        raise MlopsError(f"{env} has no endpoint {cfg.endpoint_name} serving traffic; deploy first")
    return cfg, backend, endpoint


def deploy(ctx: Context, env: str, model_ref: str | None = None) -> RolloutResult | None:
    cfg = ctx.config(env)
    model = resolve_shared(ctx, env, model_ref)
    if model is None:  # e.g. deploy-prod on a fork whose prod was never promoted
        ctx.say(
            f"notice: {cfg.path.as_posix()} names no model.version and no --model was given: "
            "nothing to deploy (a merged promotion pull request sets it)"
        )
        set_outputs(deployed="false")
        return None
    with endpoint_lock(ctx.home, env, cfg.endpoint_name, ctx.say):
        interrupted.recover(ctx, env, cfg.endpoint_name, locked=True)
        try:
            result = rollout(
                ctx.backend(env),
                cfg.endpoint_name,
                model,
                load_contract(ctx.root),
                say=ctx.say,
                mirror_percent=cfg.mirror_percent,
                mirror_seconds=cfg.mirror_seconds,
                autoscale=cfg.autoscale,
                begin=lambda new: interrupted.begun(ctx, env, cfg.endpoint_name, model, new),
            )
        except RolloutFailed as failed:
            reason = str(failed).splitlines()[0]
            history.record(ctx, env, history.ROLLED_BACK, model, cfg.endpoint_name, reason=reason)
            interrupted.ended(ctx, env, cfg.endpoint_name)
            raise
        history.record(ctx, env, history.DEPLOYED, model, cfg.endpoint_name, result.deployment)
        interrupted.ended(ctx, env, cfg.endpoint_name)
    ctx.say(
        f"{env} endpoint {cfg.endpoint_name} serves {model.ref} at {result.endpoint.scoring_uri}"
    )
    set_outputs(deployed="true", model=model.ref)
    return result


def test(ctx: Context, env: str, model_ref: str | None = None) -> SmokeResult:
    """Smoke-test the endpoint; with model_ref, first check that it is what takes all traffic."""
    expected = ":".join(map(str, parse_model_ref(model_ref))) if model_ref is not None else None
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    live = serving(endpoint)
    if expected is not None and (live is None or live.model != expected):
        shown = live.model if live else f"a split ({endpoint.traffic})"
        raise EndpointTestFailed(f"{env} serves {shown}, not {expected}")
    result = smoke_test(
        lambda body: backend.invoke(cfg.endpoint_name, body), load_contract(ctx.root)
    )
    if not result.ok:
        raise EndpointTestFailed(
            f"{env} endpoint {endpoint.scoring_uri} failed its test: {result.detail}"
        )
    live = endpoint.deployments[endpoint.live]
    ctx.say(f"{endpoint.scoring_uri}: {result.detail} in {result.latency_ms:.0f} ms")
    ctx.say(
        f"serving {live.model} from deployment {live.name!r} (sha256 {live.artifact_sha256[:12]}…)"
    )
    return result


def endpoint_key(ctx: Context, env: str) -> str:
    """The key a client sends as `Authorization: Bearer <key>` to the environment's endpoint."""
    cfg = ctx.config(env)
    _, headers = ctx.backend(env).scoring_target(cfg.endpoint_name)
    return headers.get("Authorization", "").removeprefix("Bearer ")


def profile_endpoint(
    ctx: Context,
    env: str,
    concurrency: int = 2,
    max_requests: int = 2000,
    max_seconds: float = 10.0,
) -> Profile:
    """A bounded load on the environment's endpoint, and the instance count its target needs."""
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    url, headers = backend.scoring_target(cfg.endpoint_name)
    found = profile(
        url,
        {**headers, **backend.owner_headers(cfg.endpoint_name)},  # its probes stay unmonitored
        load_sample(ctx.root),
        backend.serving_instances(),
        cfg.target_rps,
        concurrency,
        max_requests,
        max_seconds,
    )
    write_json(ctx.home / env / "profile.json", found.as_dict())
    ctx.say(
        f"{found.requests} requests in {found.seconds}s, {found.errors} errors: {found.rps} req/s"
    )
    ctx.say(f"latency p50 {found.p50_ms} ms, p99 {found.p99_ms} ms")
    ctx.say(
        f"sustained per instance: {found.rps_per_instance} req/s ({found.instances} instance(s))"
    )
    for line in advice(found, cfg):
        ctx.say(line)
    if found.requests == 0:
        raise MlopsError(f"{env} endpoint {url} answered no request successfully")
    return found


def monitor(
    ctx: Context, env: str, window: str | None = None, labels: Path | None = None
) -> DriftResult | None:
    """Compare what the endpoint collected from clients of the model it serves, over the window
    (default: the env file's monitor.window), with that model's training data; where labels
    exist (--labels, monitor.labels), judge its performance too (feedback.py)."""
    cfg = ctx.config(env)
    rules = cfg.require_monitor()
    endpoint = ctx.backend(env).get_endpoint(cfg.endpoint_name)
    if cfg.model_version is None and (endpoint is None or endpoint.live is None):
        ctx.say(f"notice: {env} serves no model yet ({cfg.path.as_posix()}): nothing to monitor")
        set_outputs(drift="false", performance="none", retrain="false", reason="none")
        return None
    window = window or rules.window
    start = since(window)
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    served = endpoint.deployments[endpoint.live].model
    name, version = parse_model_ref(served)
    model = backend.get_shared_model(name, version)
    # labels first: a bad labels file is refused before the long drift pass
    perf = feedback.monitored_performance(ctx, cfg, backend, served, window, start, labels)
    result = measure(
        load_reference(training_data_of(ctx, served, model, env)),
        backend.collected_rows(cfg.endpoint_name, model=served, since=start),
        rules.psi,
        rules.ks,
        rules.min_rows,
        model.importances if model is not None else None,
    )
    folder = ctx.home / env / "monitor"
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / REPORT_FILE
    section = feedback.report_markdown(perf) if perf is not None else ""
    report.write_text(report_markdown(env, served, result, rules.psi, rules.ks, window, section))
    image = plot(result, folder / CHART_FILE, performance=perf)
    retrain = retrain_reason(env, result, perf, report)
    set_outputs(
        drift=str(bool(result.drifted)).lower(),
        performance=feedback.output_of(perf),
        retrain=str(retrain is not None).lower(),
        reason=retrain.reason if retrain is not None else "none",
        report=str(report),
    )
    for feature in result.features[:5]:
        mark = " drifted" if feature.drifted else ""
        ctx.say(f"{feature.name}: PSI {feature.psi:.3f}, KS {feature.ks:.3f}{mark}")
    ctx.say(
        f"{result.rows} collected rows of {served} (window {window}); "
        f"report {report}, chart {image}"
    )
    if result.unreadable:
        ctx.say(f"{result.unreadable} unreadable collected row(s) were skipped")
    if not result.judged:
        ctx.say(f"fewer than {rules.min_rows} rows: reported, not judged")
    if perf is not None:
        feedback.say_performance(ctx, perf)
    if result.drifted:
        ctx.emit(
            events.DRIFT_DETECTED,
            env,
            served,
            model.artifact_sha256 if model else None,
            features=[f.name for f in result.drifted],
            report=str(report),
        )
    if perf is not None and perf.degraded:
        ctx.emit(
            events.PERFORMANCE_DEGRADED,
            env,
            served,
            model.artifact_sha256 if model else None,
            metrics={v.metric: v.value for v in perf.degraded},
            report=str(report),
        )
    if retrain is not None:
        raise retrain
    return result


def training_data_of(
    ctx: Context, served: str, model: ModelVersion | None, env: str = config_module.TRAINING_ENV
) -> Path:
    """The data a model was trained on, by its lineage, read by env's identity
    (mlops.data.training_data_of)."""
    return data_module.training_data_of(ctx, served, model, env)


def status(ctx: Context, envs: list[str]) -> dict[str, list[Endpoint]]:
    """Each environment's endpoints, as read live (after finishing or undoing a deploy that
    was killed part-way: mlops.interrupted)."""
    for env in envs:
        interrupted.recover(ctx, env, ctx.config(env).endpoint_name)
    return {env: ctx.backend(env).list_endpoints() for env in envs}


def down(ctx: Context, envs: list[str]) -> int:
    stopped = 0
    for env in envs:
        backend = ctx.backend(env)
        for endpoint in backend.list_endpoints():  # a damaged one is listed, with a warning
            backend.delete_endpoint(endpoint.name)
            found_by = "" if endpoint.scoring_uri else " (found by its processes, not its state)"
            ctx.say(f"stopped {env} endpoint {endpoint.name}{found_by}")
            stopped += 1
    return stopped
