"""A fork with another task edits only src/model and environments/, and the lifecycle runs.

The fork predicts `mean_radius` from the other measures with a random forest
regressor on the same data: its own contract (features, target, response
schema), estimator, metrics and scoring answer, and a gate on rmse (lower is
better) and r2 (higher is better). Then train, register, share, gate, deploy
to preprod, test and promote run on the local backend in the fork, with the
template's src/mlops untouched."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, run_mlops

pytestmark = pytest.mark.e2e

MODEL = "cell-radius-regressor"
TARGET = "mean_radius"

FEATURES_EDITS = {
    'TARGET = "malignant"  # 1 = malignant, 0 = benign\n': (
        f'TARGET = "{TARGET}"\nFEATURES = tuple(name for name in FEATURES if name != TARGET)\n'
    ),
    "CLASSES: tuple[int, ...] | None = (0, 1)": "CLASSES: tuple[int, ...] | None = None",
}
RESPONSE_SCHEMA = """RESPONSE_SCHEMA: dict = {
    "type": "object",
    "required": ["predictions"],
    "additionalProperties": False,
    "properties": {"predictions": {"type": "array", "items": {"type": "number"}}},
}
"""
PREDICT = """def predict(session, rows) -> dict:
    matrix = np.asarray(rows, dtype=np.float32)
    (values,) = session.run(None, {session.get_inputs()[0].name: matrix})
    return {"predictions": np.round(values[:, 0].astype(float), 6).tolist()}
"""
ONNX_SCORES = '''def onnx_scores(path, features):
    """The predicted radius the served artifact gives each row."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (values,) = session.run(None, {session.get_inputs()[0].name: features})
    return np.asarray(values)[:, 0]
'''
METRICS = '''def metrics(y_true, y_pred):
    """Held-out errors (lower is better) and r2 (higher is better)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": round(float(mean_squared_error(y_true, y_pred) ** 0.5), 6),
        "mae": round(float(mean_absolute_error(y_true, y_pred)), 6),
        "r2": round(float(r2_score(y_true, y_pred)), 6),
    }
'''
IMPORTANCE_SCORE = '''def importance_score(y_true, y_pred):
    """What a shuffled feature costs, in r2 (higher is better)."""
    return metrics(y_true, y_pred)["r2"]
'''
PLOT = '''def plot(y_true, y_pred, path):
    """Residuals against predictions on held-out rows."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.scatter(y_pred, y_true - y_pred, s=8)
    ax.axhline(0, linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("predicted radius")
    ax.set_ylabel("residual")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
'''
GATE = """  thresholds:
    rmse: {at_most: 0.5}
    r2: {at_least: 0.9}
"""


# Per tumour size (the template's cohort, which reads mean_radius: here the target, which the
# held-out rows carry): a loose ceiling on each group's rmse, none on the gap between them.
COHORT_BOUNDS = """  cohorts:
    tumour_size:
      min_rows: 5
      bounds: {rmse: 2.0}
"""


def replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the fork's edit must match the template once: {old[:60]!r}"
    return text.replace(old, new)


def with_function(text: str, name: str, code: str) -> str:
    """text with its top-level function name replaced by code."""
    found = re.search(rf"^def {name}\(.*?(?=^[^\s)])", text, flags=re.M | re.S)
    assert found, f"the template has no function {name}"
    return text[: found.start()] + code + "\n\n" + text[found.end() :]


def edit(path: Path, change) -> None:
    path.write_text(change(path.read_text()))


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    )
    return [name for name in listed.stdout.decode().split("\0") if (ROOT / name).is_file()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_fork(fork: Path) -> None:
    for name in tracked_files():
        target = fork / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    model = fork / "src" / "model"

    def features(text: str) -> str:
        for old, new in FEATURES_EDITS.items():
            text = replaced(text, old, new)
        schema = re.search(r"^RESPONSE_SCHEMA: dict = \{\n.*?^\}\n", text, flags=re.M | re.S)
        assert schema, "features.py declares no RESPONSE_SCHEMA"
        return text[: schema.start()] + RESPONSE_SCHEMA + text[schema.end() :]

    edit(model / "features.py", features)

    def train(text: str) -> str:
        assert "RandomForestClassifier(" in text, "train.py builds no RandomForestClassifier"
        text = replaced(text, 'ONNX_OPTIONS: dict = {"zipmap": False}', "ONNX_OPTIONS: dict = {}")
        return text.replace("RandomForestClassifier", "RandomForestRegressor")

    edit(model / "train.py", train)
    edit(
        model / "evaluate.py",
        lambda t: with_function(
            with_function(
                with_function(with_function(t, "onnx_scores", ONNX_SCORES), "metrics", METRICS),
                "importance_score",
                IMPORTANCE_SCORE,
            ),
            "plot",
            PLOT,
        ).replace('PLOT_FILE = "roc_curve.png"', 'PLOT_FILE = "residuals.png"'),
    )
    edit(model / "score.py", lambda t: with_function(t, "predict", PREDICT))
    subprocess.run(
        [sys.executable, "features.py"], cwd=model, check=True, capture_output=True, timeout=120
    )  # the sample request and the OpenAPI documents, generated from the fork's contract
    for env in ("dev", "preprod", "prod"):
        edit(
            fork / "environments" / f"{env}.yml",
            lambda t: replaced(t, "name: breast-cancer-classifier", f"name: {MODEL}"),
        )
    edit(
        fork / "environments" / "prod.yml",
        lambda t: re.sub(r"  thresholds:\n(    .*\n)+", GATE, t),
    )
    # the template's cohort bounds name the classifier's metrics: the fork bounds its own
    edit(
        fork / "environments" / "prod.yml",
        lambda t: re.sub(r"  cohorts:\n(    .*\n)+", COHORT_BOUNDS, t),
    )


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    base = tmp_path_factory.mktemp("regression-fork")
    fork, home = base / "fork", base / "home"
    render_fork(fork)
    home.mkdir()
    yield fork, home
    run_mlops(fork, home, "down", "--all", check=False)


class Steps:
    """mlops verbs in the fork, each reading what the one before wrote to GITHUB_OUTPUT."""

    def __init__(self, repo: Path, home: Path):
        self.repo, self.home, self.outputs = repo, home, home / "github-output"

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        output = {"GITHUB_OUTPUT": str(self.outputs)}
        return run_mlops(self.repo, self.home, *args, check=check, extra_env=output)

    def last(self, key: str) -> str:
        return re.findall(rf"^{key}=(.*)$", self.outputs.read_text(), flags=re.M)[-1]


@pytest.fixture(scope="module")
def shared(fork):
    """The fork's model trained, registered and shared: (steps, its NAME:VERSION)."""
    step = Steps(*fork)
    step("train", "--env", "dev")
    step("register", "--env", "dev", "--job", step.last("job"))
    step("share", "--env", "dev", "--model", step.last("model"))
    return step, step.last("model")


def test_the_fork_changes_only_src_model_and_environments(fork):
    repo, _ = fork
    changed = sorted(name for name in tracked_files() if digest(repo / name) != digest(ROOT / name))
    assert changed, "the fork changed nothing"
    assert all(name.startswith(("src/model/", "environments/")) for name in changed), changed
    assert "src/model/swagger3.json" in changed  # generated from the fork's contract
    gate = yaml.safe_load((repo / "environments" / "prod.yml").read_text())["gate"]
    assert gate["thresholds"] == {"rmse": {"at_most": 0.5}, "r2": {"at_least": 0.9}}


def test_the_lifecycle_runs_a_regressor_from_training_to_promotion(fork, shared):
    repo, home = fork
    step, model = shared
    assert model == f"{MODEL}:1"
    from mlflow import MlflowClient

    registered = MlflowClient(f"sqlite:///{home / 'dev' / 'mlflow.db'}").get_model_version(
        MODEL, "1"
    )
    importance = {k: float(v) for k, v in registered.tags.items() if k.startswith("importance.")}
    assert len(importance) == 29 and TARGET not in {k.split(".", 1)[1] for k in importance}
    assert max(importance.values()) > 0.01, "shuffling a measure of size costs r2"

    gated = step("gate", "--env", "prod", "--model", model)
    assert re.search(r"challenger rmse 0\.\d+ meets the ceiling 0\.5000", gated.stdout)
    assert re.search(r"challenger r2 0\.9\d+ meets the floor 0\.9000", gated.stdout)

    step("deploy", "--env", "preprod", "--model", model)  # its smoke test: the fork's schema
    tested = step("test", "--env", "preprod", "--model", model)
    assert "3 rows scored, bad request refused" in tested.stdout

    state = json.loads(next((home / "preprod" / "endpoints").glob("*/endpoint.json")).read_text())
    status, answer = post(state, (repo / "src" / "model" / "sample-request.json").read_bytes())
    assert status == 200
    assert set(answer) == {"predictions"}
    radii = answer["predictions"]
    assert len(radii) == 3 and all(isinstance(r, float) and 5 < r < 30 for r in radii)

    step("promote", "--env", "prod", "--model", model, "--write")
    prod = yaml.safe_load((repo / "environments" / "prod.yml").read_text())
    assert prod["model"] == {"name": MODEL, "version": 1}
    body = (home / "promotion" / "pr-body.md").read_text()
    assert "| rmse |" in body and "| r2 |" in body


def test_the_gate_refuses_a_regressor_whose_error_is_above_its_ceiling(fork, shared):
    repo, _ = fork
    step, model = shared
    prod = repo / "environments" / "prod.yml"
    before = prod.read_text()
    prod.write_text(replaced(before, "rmse: {at_most: 0.5}", "rmse: {at_most: 0.001}"))
    try:
        refused = step("gate", "--env", "prod", "--model", model, check=False)
    finally:
        prod.write_text(before)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert re.search(
        r"REFUSED: challenger rmse 0\.\d+ is above the ceiling 0\.0010", refused.stdout
    )


def post(state: dict, body: bytes) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{state['port']}/score",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {state['key']}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read())
