"""The lifecycle verbs, each one step of the data flow, the same for every backend.

The command line and the workflows call these; results that a later verb needs
(the last registered model, the last gate verdict) are kept in small JSON files
under the state home, so each verb can also run as its own process.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from mlops import config as config_module
from mlops import lineage
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
    Endpoint,
    Job,
    ModelVersion,
    TrainingSpec,
)
from mlops.backends.local.state import read_json, write_json
from mlops.errors import DriftDetected, GateRefused, MlopsError
from mlops.gate import Champion, Verdict, judge
from mlops.github import set_outputs
from mlops.monitor import DriftResult, load_reference, measure, plot, report_markdown
from mlops.profile import HEADROOM, Profile, profile
from mlops.progress import Progress
from mlops.promotion import PROD_FILE, render
from mlops.rollout import RolloutResult, rollout
from mlops.smoke import load_sample, smoke_test

CODE_DIR = Path("src") / "model"


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

    def remember(self, env: str, key: str, value: dict) -> None:
        write_json(self.home / env / "session" / f"{key}.json", value)

    def recall(self, env: str, key: str) -> dict | None:
        return read_json(self.home / env / "session" / f"{key}.json")

    def say(self, message: str) -> None:
        self.progress.say(message)


def parse_model_ref(ref: str) -> tuple[str, int | str]:
    name, sep, version = ref.partition(":")
    if not sep or not name or not (version.isdigit() and int(version) > 0 or version == "latest"):
        raise MlopsError(
            f"model {ref!r} must be written NAME:VERSION, e.g. breast-cancer-classifier:3"
        )
    return name, int(version) if version.isdigit() else version


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


def register(ctx: Context, env: str, job_id: str = "last") -> ModelVersion:
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
    ctx.remember(env, "registered", {"name": model.name, "version": model.version})
    return model


def share(ctx: Context, env: str, model_ref: str | None = None) -> ModelVersion:
    backend = ctx.backend(env)
    if model_ref:
        name, version = parse_model_ref(model_ref)
    else:
        last = ctx.recall(env, "registered")
        if not last:
            raise MlopsError(f"no model registered in {env} yet; run `mlops register --env {env}`")
        name, version = last["name"], last["version"]
    source = _registered(backend, env, name, version)
    shared, created = backend.share_model(source)
    verb = "shared" if created else "already in the registry:"
    ctx.say(f"{verb} {shared.ref} (sha256 {shared.artifact_sha256[:12]}…)")
    return shared


def _registered(backend: Backend, env: str, name: str, version: int | str) -> ModelVersion:
    model = backend.get_registered_model(name, version)
    if model is None:
        raise MlopsError(f"{name}:{version} is not registered in {env}")
    return model


# ---- gate and promotion --------------------------------------------------------------


def resolve_shared(ctx: Context, env: str, model_ref: str | None) -> ModelVersion:
    """The model an environment should serve: --model, else its file's model.version."""
    cfg = ctx.config(env)
    if model_ref:
        name, version = parse_model_ref(model_ref)
    else:
        name, version = cfg.model_name, cfg.model_version
        if version is None:
            raise MlopsError(
                f"{cfg.path.as_posix()}: model.version is empty, so there is nothing to deploy "
                "(merge a promotion pull request, or pass --model NAME:VERSION)"
            )
    model = ctx.backend(env).get_shared_model(name, version)
    if model is None:
        raise MlopsError(f"the registry holds no model {name}:{version}")
    return model


def champion_of(ctx: Context, env: str) -> tuple[Champion, ModelVersion | None]:
    cfg = ctx.config(env)
    if cfg.model_version is None:
        return Champion(None), None
    ref = f"{cfg.model_name}:{cfg.model_version}"
    try:
        model = ctx.backend(env).get_shared_model(cfg.model_name, cfg.model_version)
    except Exception as exc:  # any failure to read is a refusal, never a pass
        return Champion(ref, None, f"reading the registry failed: {exc}"), None
    if model is None:
        return Champion(ref, None, "the registry holds no such model"), None
    if not model.metrics:
        return Champion(ref, None, "it carries no metric tags"), model
    return Champion(ref, model.metrics), model


def gate(ctx: Context, env: str, model_ref: str | None = None) -> tuple[ModelVersion, Verdict]:
    rules = ctx.config(env).require_gate()
    challenger = resolve_shared(ctx, env, model_ref or f"{ctx.config(env).model_name}:latest")
    champion, _ = champion_of(ctx, env)
    verdict = judge(challenger.metrics, champion, rules)
    for reason in verdict.reasons:
        ctx.say(reason)
    ctx.remember(
        env, "gate", {"model": challenger.ref, "passed": verdict.passed, "reasons": verdict.reasons}
    )
    if not verdict.passed:
        raise GateRefused(f"the gate refused {challenger.ref} for {env}")
    ctx.say(f"the gate lets {challenger.ref} through to {env}")
    return challenger, verdict


def promote(
    ctx: Context, env: str, model_ref: str | None = None, write: bool = False
) -> Path | None:
    """Render the promotion pull request; with write=True also change environments/prod.yml."""
    cfg = ctx.config(env)
    challenger, verdict = gate(ctx, env, model_ref)
    if cfg.model_version == challenger.version:
        ctx.say(f"{env} already names {challenger.ref}: nothing to promote")
        return None
    _, champion = champion_of(ctx, env)
    prod_path = ctx.root / cfg.path
    promotion = render(prod_path.read_text(), challenger, champion, verdict)
    folder = ctx.home / "promotion"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / Path(PROD_FILE).name).write_text(promotion.new_text)
    (folder / "prod.yml.diff").write_text(promotion.diff)
    (folder / "pr-title.txt").write_text(promotion.title + "\n")
    (folder / "pr-body.md").write_text(promotion.body)
    ctx.remember(env, "promotion", {"model": challenger.ref})
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


def deploy(ctx: Context, env: str, model_ref: str | None = None) -> RolloutResult:
    cfg = ctx.config(env)
    model = resolve_shared(ctx, env, model_ref)
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
    return result


def test(ctx: Context, env: str) -> None:
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    result = smoke_test(lambda body: backend.invoke(cfg.endpoint_name, body), load_sample(ctx.root))
    if not result.ok:
        raise MlopsError(f"{env} endpoint {endpoint.scoring_uri} failed its test: {result.detail}")
    live = endpoint.deployments[endpoint.live]
    ctx.say(f"{endpoint.scoring_uri}: {result.detail} in {result.latency_ms:.0f} ms")
    ctx.say(
        f"serving {live.model} from deployment {live.name!r} (sha256 {live.artifact_sha256[:12]}…)"
    )


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


def monitor(ctx: Context, env: str) -> DriftResult:
    """Compare what the endpoint collected with the training data of the model it serves."""
    rules = ctx.config(env).require_monitor()
    cfg, backend, endpoint = _live_endpoint(ctx, env)
    served = endpoint.deployments[endpoint.live].model
    name, version = parse_model_ref(served)
    model = backend.get_shared_model(name, version)
    training = ctx.config("dev")
    data = ctx.root / (training.training_data or "")
    if model is None or not data.is_file() or lineage.sha256_of(data) != model.tags.get(TAG_DATA):
        raise MlopsError(
            f"the training data of {served} is not {training.path.as_posix()}'s training.data "
            "(its data_sha256 differs); monitor against the data the model was trained on"
        )
    result = measure(
        load_reference(data),
        backend.collected_rows(cfg.endpoint_name),
        rules.psi,
        rules.ks,
        rules.min_rows,
    )
    folder = ctx.home / env / "monitor"
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "drift-report.md"
    report.write_text(report_markdown(env, served, result, rules.psi, rules.ks))
    image = plot(result, folder / "drift.png")
    set_outputs(drift=str(bool(result.drifted)).lower(), report=str(report))
    for feature in result.features[:5]:
        mark = " drifted" if feature.drifted else ""
        ctx.say(f"{feature.name}: PSI {feature.psi:.3f}, KS {feature.ks:.3f}{mark}")
    ctx.say(f"{result.rows} collected rows; report {report}, chart {image}")
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
    data = ctx.root / (ctx.config("dev").training_data or "")
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
