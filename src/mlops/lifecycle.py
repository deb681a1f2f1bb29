"""The lifecycle verbs, each one step of the data flow, the same for every backend.

What a later verb needs is handed to it explicitly: `train` prints (and writes
as a step output) the job id that `register --job` takes, `register` and
`share` the NAME:VERSION that `gate`, `deploy` and `promote` take. Nothing is
remembered between verbs and nothing resolves "latest", so one release acts on
one model from the job that made it to prod.
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mlops import config as config_module
from mlops import exam, lineage
from mlops.backends import open_backend
from mlops.backends.base import (
    METRIC_PREFIX,
    PARAM_PREFIX,
    TAG_ARTIFACT,
    TAG_DATA,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
    Backend,
    Deployment,
    Endpoint,
    Job,
    ModelVersion,
    TrainingSpec,
)
from mlops.errors import DriftDetected, EndpointTestFailed, GateRefused, MlopsError
from mlops.gate import Champion, GateResult, judge
from mlops.github import set_outputs
from mlops.locks import endpoint_lock
from mlops.monitor import DriftResult, load_reference, measure, plot, report_markdown
from mlops.profile import HEADROOM, Profile, profile
from mlops.progress import Progress
from mlops.promotion import PROD_FILE, render
from mlops.rollout import RolloutResult, rollout
from mlops.smoke import load_sample, smoke_test
from mlops.state import write_json
from mlops.window import since

CODE_DIR = Path("src") / "model"
TRAINING_ENV = "dev"  # whose environment file names the training data
PROMOTED_FROM = "preprod"  # prod takes only what this environment serves


@dataclass
class Context:
    root: Path
    home: Path
    backend_name: str | None = None
    progress: Progress | None = None

    def __post_init__(self) -> None:
        self.progress = self.progress or Progress()
        self._backends: dict[str, Backend] = {}

    def config(self, env: str) -> config_module.EnvConfig:
        return config_module.load(env, self.root)

    def backend(self, env: str) -> Backend:
        if env not in self._backends:
            self._backends[env] = open_backend(
                self.config(env), self.root, self.home, self.backend_name
            )
        return self._backends[env]

    def say(self, message: str) -> None:
        self.progress.say(message)


def parse_model_ref(ref: str) -> tuple[str, int]:
    name, sep, version = ref.partition(":")
    if not sep or not name or not (version.isdigit() and int(version) > 0):
        raise MlopsError(
            f"model {ref!r} must be written NAME:VERSION with a version number, "
            "e.g. breast-cancer-classifier:3"
        )
    return name, int(version)


# ---- train, register, share ----------------------------------------------------------


def train(ctx: Context, env: str) -> Job:
    cfg = ctx.config(env)
    if cfg.training_data is None:
        raise MlopsError(
            f"{cfg.path.as_posix()}: no `training.data`; {env} is not a training environment"
        )
    spec = TrainingSpec(
        code_dir=str(ctx.root / CODE_DIR),
        data_path=str(ctx.root / cfg.training_data),
        params=cfg.training_params,
        experiment=cfg.model_name,
        git_commit=lineage.git_commit(ctx.root),
    )
    job = ctx.backend(env).run_training_job(spec)
    ctx.say(f"job {job.id} completed: run {job.run_id}")
    ctx.say("metrics " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(job.metrics.items())))
    ctx.say(f"next: mlops register --env {env} --job {job.id}")
    set_outputs(job=job.id)
    return job


def lineage_tags(job: Job) -> dict[str, str]:
    tags = {
        TAG_GIT: job.git_commit,
        TAG_DATA: job.data_sha256,
        TAG_RUN: job.run_id,
        TAG_JOB: job.id,
        TAG_ARTIFACT: job.artifact_sha256,
    }
    tags.update({f"{METRIC_PREFIX}{k}": str(v) for k, v in job.metrics.items()})
    tags.update({f"{PARAM_PREFIX}{k}": str(v) for k, v in job.params.items()})
    return tags


def register(ctx: Context, env: str, job_id: str) -> ModelVersion:
    cfg = ctx.config(env)
    backend = ctx.backend(env)
    job = backend.get_job(job_id)
    model, created = backend.register_model(job, cfg.model_name, lineage_tags(job))
    if created:
        ctx.say(f"registered {model.ref} from run {job.run_id}")
    else:
        ctx.say(
            f"{model.ref} already holds these bytes "
            f"(sha256 {model.artifact_sha256[:12]}…): not registered again"
        )
    set_outputs(model=model.ref)
    return model


def share(ctx: Context, env: str, model_ref: str) -> ModelVersion:
    backend = ctx.backend(env)
    name, version = parse_model_ref(model_ref)
    source = backend.get_registered_model(name, version)
    if source is None:
        raise MlopsError(f"{name}:{version} is not registered in {env}")
    shared, created = backend.share_model(source)
    verb = "shared" if created else "already in the registry:"
    ctx.say(f"{verb} {shared.ref} (sha256 {shared.artifact_sha256[:12]}…)")
    set_outputs(model=shared.ref)
    return shared


# ---- gate and promotion --------------------------------------------------------------


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
    live = _serving(endpoint)
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


def gate(ctx: Context, env: str, model_ref: str) -> GateResult:
    """Examine the model and refuse it (exit 3) unless the verdict passes."""
    result = examine(ctx, env, model_ref)
    for reason in result.verdict.reasons:
        ctx.say(reason)
    set_outputs(model=result.challenger.ref, passed=str(result.verdict.passed).lower())
    if not result.verdict.passed:
        raise GateRefused(f"the gate refused {result.challenger.ref} for {env}")
    ctx.say(f"the gate lets {result.challenger.ref} through to {env}")
    return result


def examine(ctx: Context, env: str, model_ref: str) -> GateResult:
    """The gate's judgement of a shared model against env's floors and champion, on one exam."""
    cfg = ctx.config(env)
    rules = cfg.require_gate()
    backend = ctx.backend(env)
    challenger = resolve_shared(ctx, env, model_ref)
    champion, champion_model = champion_of(ctx, env)
    ctx.say(f"champion: {champion.ref or 'none'}, read from {champion.source}")

    training = ctx.config(TRAINING_ENV)
    data = ctx.root / (training.training_data or "")
    paper = exam.paper_for(challenger, data, f"{training.path.as_posix()}'s training.data")
    with tempfile.TemporaryDirectory(prefix="mlops-exam-") as folder:
        artifacts = {"challenger": backend.download_model(challenger, Path(folder))}
        if champion_model is not None:
            try:
                artifacts["champion"] = backend.download_model(champion_model, Path(folder))
            except MlopsError as exc:
                champion, champion_model = replace(champion, problem=str(exc)), None
        scores = exam.sit(ctx.root, paper, artifacts)
    if champion_model is not None:
        champion = replace(champion, metrics=scores["champion"], problem=None)
    shown_paper = paper.describe(ctx.root)
    ctx.say(f"exam: {' and '.join(scores)} scored on the held-out rows of {shown_paper}")
    verdict = judge(scores["challenger"], champion, rules)
    figures = scores["challenger"]
    return GateResult(challenger, champion, champion_model, figures, shown_paper, verdict)


def _serving(endpoint: Endpoint | None) -> Deployment | None:
    return endpoint.sole_deployment if endpoint is not None else None


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
    live = _serving(endpoint)
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
    promotion = render(prod_path.read_text(), result, checked)
    folder = ctx.home / "promotion"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Path(PROD_FILE).name).write_text(promotion.new_text)
    (folder / "prod.yml.diff").write_text(promotion.diff)
    (folder / "pr-title.txt").write_text(promotion.title + "\n")
    (folder / "pr-body.md").write_text(promotion.body)
    if write:
        prod_path.write_text(promotion.new_text)
        ctx.say(f"wrote {cfg.path.as_posix()}")
    for line in promotion.diff.splitlines():
        ctx.say(line)
    ctx.say(f"pull request title and body: {folder / 'pr-title.txt'}, {folder / 'pr-body.md'}")
    set_outputs(title=promotion.title, body_path=str(folder / "pr-body.md"))
    return folder


# ---- deploy, test, status, down ------------------------------------------------------------


def _live_endpoint(ctx: Context, env: str) -> tuple[config_module.EnvConfig, Backend, Endpoint]:
    """The environment's endpoint, which must have a deployment taking traffic."""
    cfg = ctx.config(env)
    backend = ctx.backend(env)
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
        result = rollout(
            ctx.backend(env),
            cfg.endpoint_name,
            model,
            load_sample(ctx.root),
            say=ctx.say,
            mirror_percent=cfg.mirror_percent,
            mirror_seconds=cfg.mirror_seconds,
        )
    ctx.say(
        f"{env} endpoint {cfg.endpoint_name} serves {model.ref} at {result.endpoint.scoring_uri}"
    )
    set_outputs(deployed="true", model=model.ref)
    return result


def test(ctx: Context, env: str, model_ref: str | None = None) -> None:
    """Smoke-test the endpoint; with model_ref, first check that it is what takes all traffic."""
    expected = ":".join(map(str, parse_model_ref(model_ref))) if model_ref is not None else None
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    live = _serving(endpoint)
    if expected is not None and (live is None or live.model != expected):
        shown = live.model if live else f"a split ({endpoint.traffic})"
        raise EndpointTestFailed(f"{env} serves {shown}, not {expected}")
    result = smoke_test(lambda body: backend.invoke(cfg.endpoint_name, body), load_sample(ctx.root))
    if not result.ok:
        raise EndpointTestFailed(
            f"{env} endpoint {endpoint.scoring_uri} failed its test: {result.detail}"
        )
    live = endpoint.deployments[endpoint.live]
    ctx.say(f"{endpoint.scoring_uri}: {result.detail} in {result.latency_ms:.0f} ms")
    ctx.say(
        f"serving {live.model} from deployment {live.name!r} (sha256 {live.artifact_sha256[:12]}…)"
    )


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
        headers,
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
    if found.recommended_instances is None:
        ctx.say(f"set endpoint.target_rps in {cfg.path.as_posix()} for an instance recommendation")
    else:
        ctx.say(
            f"for {found.target_rps} req/s at {int(HEADROOM * 100)}% load per instance: "
            f"instance_count {found.recommended_instances} (now {cfg.instance_count})"
        )
    if found.requests == 0:
        raise MlopsError(f"{env} endpoint {url} answered no request successfully")
    return found


def monitor(ctx: Context, env: str, window: str | None = None) -> DriftResult | None:
    """Compare what the endpoint collected from clients of the model it serves, over the window
    (default: the env file's monitor.window), with that model's training data."""
    cfg = ctx.config(env)
    rules = cfg.require_monitor()
    endpoint = ctx.backend(env).get_endpoint(cfg.endpoint_name)
    if cfg.model_version is None and (endpoint is None or endpoint.live is None):
        ctx.say(f"notice: {env} serves no model yet ({cfg.path.as_posix()}): nothing to monitor")
        set_outputs(drift="false")
        return None
    window = window or rules.window
    start = since(window)
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    served = endpoint.deployments[endpoint.live].model
    name, version = parse_model_ref(served)
    model = backend.get_shared_model(name, version)
    training = ctx.config(TRAINING_ENV)
    data = ctx.root / (training.training_data or "")
    if model is None or not data.is_file() or lineage.sha256_of(data) != model.tags.get(TAG_DATA):
        raise MlopsError(
            f"the training data of {served} is not {training.path.as_posix()}'s training.data "
            "(its data_sha256 differs); monitor against the data the model was trained on"
        )
    result = measure(
        load_reference(data),
        backend.collected_rows(cfg.endpoint_name, model=served, since=start),
        rules.psi,
        rules.ks,
        rules.min_rows,
    )
    folder = ctx.home / env / "monitor"
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "drift-report.md"
    report.write_text(report_markdown(env, served, result, rules.psi, rules.ks, window))
    image = plot(result, folder / "drift.png")
    set_outputs(drift=str(bool(result.drifted)).lower(), report=str(report))
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
    if result.drifted:
        names = ", ".join(f.name for f in result.drifted[:5])
        raise DriftDetected(
            f"{len(result.drifted)} feature(s) drifted in {env} ({names}); see {report}"
        )
    return result


def send_shifted_traffic(
    ctx: Context, env: str, requests: int = 30, rows: int = 10, scale: float = 1.4
) -> int:
    """Score training rows with size features scaled up: the drift a new scanner might cause."""
    cfg = ctx.config(env)
    data = ctx.root / (ctx.config(TRAINING_ENV).training_data or "")
    with open(data, newline="") as handle:
        table = [
            {
                k: float(v) * (scale if "radius" in k or "area" in k or "perimeter" in k else 1)
                for k, v in row.items()
            }
            for row in csv.DictReader(handle)
        ]
    features = set(json.loads(load_sample(ctx.root))["data"][0])
    backend, sent = ctx.backend(env), 0
    for i in range(requests):
        batch = [{k: row[k] for k in features} for row in table[i * rows : (i + 1) * rows]]
        if backend.invoke(cfg.endpoint_name, json.dumps({"data": batch}).encode()).status == 200:
            sent += len(batch)
    ctx.say(f"sent {sent} shifted rows to {env}")
    return sent


def status(ctx: Context, envs: list[str]) -> dict:
    report = {}
    for env in envs:
        backend = ctx.backend(env)
        endpoints = []
        for endpoint in backend.list_endpoints():
            endpoints.append(
                {
                    "endpoint": endpoint.name,
                    "scoring_uri": endpoint.scoring_uri,
                    "traffic": endpoint.traffic,
                    "mirror_traffic": endpoint.mirror_traffic,  # left on by a killed soak?
                    "deployments": {
                        d.name: {"model": d.model, "state": d.state, "sha256": d.artifact_sha256}
                        for d in endpoint.deployments.values()
                    },
                }
            )
        report[env] = endpoints
    return report


def down(ctx: Context, envs: list[str]) -> int:
    stopped = 0
    for env in envs:
        backend = ctx.backend(env)
        for endpoint in backend.list_endpoints():
            backend.delete_endpoint(endpoint.name)
            ctx.say(f"stopped {env} endpoint {endpoint.name}")
            stopped += 1
    return stopped


def as_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
