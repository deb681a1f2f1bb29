"""`mlops demo`: the whole lifecycle on this machine, each stage handing the next its job or
model, then shifted traffic for the monitor to catch and where to look."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from mlops import lifecycle
from mlops.champion import parse_model_ref
from mlops.context import Context
from mlops.data import training_data_of
from mlops.errors import DriftDetected
from mlops.monitor import REPORT_FILE
from mlops.paths import MODEL_CODE
from mlops.smoke import SAMPLE_REQUEST, load_sample


def run(ctx: Context) -> int:
    stage = ctx.progress.stage
    with stage("train (dev)"):
        job = lifecycle.train(ctx, "dev")
    with stage("register (dev)"):
        registered = lifecycle.register(ctx, "dev", job.id)
    with stage("share to the registry"):
        model = lifecycle.share(ctx, "dev", registered.ref).ref
    with stage("gate (challenger vs prod champion)"):
        lifecycle.gate(ctx, "prod", model)
    with stage("deploy (preprod, blue/green)"):
        lifecycle.deploy(ctx, "preprod", model)
    with stage("test (preprod)"):
        lifecycle.test(ctx, "preprod", model)
    with stage("promote (render the pull request for prod)"):
        lifecycle.promote(ctx, "prod", model)
    with stage("deploy (prod, the promoted version)"):
        lifecycle.deploy(ctx, "prod", model)
    with stage("test (prod)"):
        lifecycle.test(ctx, "prod", model)
    with stage("monitor (prod, after shifted traffic)"):
        send_shifted_traffic(ctx, "prod")
        try:
            lifecycle.monitor(ctx, "prod")
        except DriftDetected as drift:
            ctx.say(f"drift detected, as the shifted traffic should cause: {drift}")
    where_to_look(ctx)
    return 0


def scenario(root: Path) -> ModuleType:
    """src/model/scenario.py, loaded from the code folder (src/model is no package)."""
    path = root / MODEL_CODE / "scenario.py"
    spec = importlib.util.spec_from_file_location("model_scenario", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def send_shifted_traffic(ctx: Context, env: str, requests: int = 30, rows: int = 10) -> int:
    """Score the scenario's shifted rows through env's endpoint, as live clients would."""
    cfg = ctx.config(env)
    backend, sent = ctx.backend(env), 0
    endpoint = backend.get_endpoint(cfg.endpoint_name)
    served = endpoint.deployments[endpoint.live].model
    model = backend.get_shared_model(*parse_model_ref(served))
    table = scenario(ctx.root).shifted_rows(training_data_of(ctx, served, model, env))
    features = set(json.loads(load_sample(ctx.root))["data"][0])
    for i in range(requests):
        batch = [{k: row[k] for k in features} for row in table[i * rows : (i + 1) * rows]]
        if backend.invoke(cfg.endpoint_name, json.dumps({"data": batch}).encode()).status == 200:
            sent += len(batch)
    ctx.say(f"sent {sent} shifted rows to {env}")
    return sent


def where_to_look(ctx: Context) -> None:
    report = lifecycle.status(ctx, ["preprod", "prod"])
    print(f"\nDone in {ctx.progress.elapsed():.1f}s. Where to look:")
    for env, endpoints in report.items():
        for endpoint in endpoints:
            print(f"  {env:8} endpoint  {endpoint.scoring_uri}")
    prod = report["prod"][0].scoring_uri if report["prod"] else "URL"
    print(
        "  try it    curl -s -H 'Content-Type: application/json' "
        '-H "Authorization: Bearer $(.venv/bin/mlops key --env prod)" '
        f"-d @{SAMPLE_REQUEST.as_posix()} {prod}"
    )
    store = ctx.home / "dev" / "mlflow.db"
    print(f"  runs      .venv/bin/mlflow ui --backend-store-uri sqlite:///{store}")
    print(f"  PR        {ctx.home / 'promotion' / 'pr-body.md'}")
    print(f"  monitor   {ctx.home / 'prod' / 'monitor' / REPORT_FILE}")
    print("  audit     .venv/bin/mlops history --env prod")
    print("  stop      make down")
