"""One model version from share to prod, on the local backend, when releases overlap.

The verbs run in this process in the order two or three overlapping workflow
runs could interleave them. Each release carries the version its own train job
shared (as release.yml does); promotion takes only what preprod serves, and the
gate judges champion and challenger on the same held-out rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import copy_repo, edit, env_setting, run_mlops

from mlops import data, lifecycle
from mlops.errors import EndpointTestFailed, GateRefused
from mlops.progress import Progress

MODEL = env_setting("prod", "model.name")
ASSET = env_setting("dev", "training.data.asset")
SMALL_FOREST = {"n_estimators: 100": "n_estimators: 30", "max_depth: 8": "max_depth: 5"}


def release_up_to_share(ctx) -> str:
    """What release.yml's train job does; returns the NAME:VERSION it hands on."""
    job = lifecycle.train(ctx, "dev")
    registered = lifecycle.register(ctx, "dev", job.id)
    return lifecycle.share(ctx, "dev", registered.ref).ref


def serving(ctx, env: str) -> str:
    endpoint = ctx.backend(env).get_endpoint(env_setting(env, "endpoint.name"))
    return endpoint.deployments[endpoint.live].model


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two shared versions from two pushes: :1 the default forest, :2 a smaller one (it passes the gate too)."""
    base = tmp_path_factory.mktemp("integrity")
    repo, home = copy_repo(base / "repo"), base / "home"
    ctx = lifecycle.Context(repo, home, "local", Progress())
    first = release_up_to_share(ctx)
    dev = repo / "environments" / "dev.yml"
    original = dev.read_text()
    edit(dev, SMALL_FOREST)
    second = release_up_to_share(ctx)
    dev.write_text(original)
    assert (first, second) == (f"{MODEL}:1", f"{MODEL}:2")
    yield repo, home, ctx
    run_mlops(repo, home, "down", "--all", check=False)


def test_overlapping_releases_promote_only_what_preprod_serves(world):
    repo, home, ctx = world
    prod_file = repo / "environments" / "prod.yml"
    before = prod_file.read_text()
    # push B's preprod job runs first, then push A's overtakes it before B proposes
    lifecycle.gate(ctx, "prod", f"{MODEL}:2")
    lifecycle.deploy(ctx, "preprod", f"{MODEL}:2")
    lifecycle.gate(ctx, "prod", f"{MODEL}:1")
    lifecycle.deploy(ctx, "preprod", f"{MODEL}:1")
    with pytest.raises(GateRefused, match=rf"serves {MODEL}:1 .*not {MODEL}:2 "):
        lifecycle.promote(ctx, "prod", f"{MODEL}:2", write=True)
    assert prod_file.read_text() == before  # the refused promotion wrote nothing
    assert lifecycle.promote(ctx, "prod", f"{MODEL}:1") is not None
    body = (home / "promotion" / "pr-body.md").read_text()
    assert (
        f"preprod's live deployment `{env_setting('preprod', 'endpoint.name')}/" in body
        and f"serves `{MODEL}:1`" in body
    )


def test_a_push_that_reverts_the_first_carries_the_first_version_not_the_newest(world):
    repo, home, ctx = world
    # push C trains the first push's code again: same bytes, so register hands on :1, and
    # every later verb acts on :1 although :2 is the registry's newest version
    third = release_up_to_share(ctx)
    assert third == f"{MODEL}:1"
    lifecycle.deploy(ctx, "preprod", third)
    assert serving(ctx, "preprod") == third
    assert lifecycle.promote(ctx, "prod", third) is not None
    assert (home / "promotion" / "pr-title.txt").read_text() == f"Promote {MODEL}:1 to prod\n"


def test_the_champion_is_what_prods_endpoint_serves_not_what_its_file_says(world):
    repo, home, ctx = world
    prod_file = repo / "environments" / "prod.yml"
    original = prod_file.read_text()
    edit(prod_file, {"version: null": "version: 2"})
    try:
        result = lifecycle.gate(ctx, "prod", f"{MODEL}:1")
        assert result.champion.ref == f"{MODEL}:2"  # prod serves nothing: its file decides
        assert result.champion.source == "environments/prod.yml (prod has no live endpoint)"
        lifecycle.deploy(ctx, "prod", f"{MODEL}:1")
        result = lifecycle.gate(ctx, "prod", f"{MODEL}:1")
        assert result.champion.ref == f"{MODEL}:1"  # the live endpoint wins over the file
        assert result.champion.source.startswith(
            f"prod's live endpoint ({env_setting('prod', 'endpoint.name')}/"
        )
    finally:
        prod_file.write_text(original)


def test_a_challenger_on_other_data_is_judged_on_the_same_rows_as_the_champion(world):
    """Champion :1 (prod, full data) vs a challenger trained on a subset: one exam, the subset's."""
    import evaluate

    repo, home, ctx = world
    lifecycle.deploy(ctx, "prod", f"{MODEL}:1")
    rows = (repo / "src" / "model" / "data" / "breast_cancer.csv").read_text().splitlines(True)
    subset = repo / "subset.csv"
    subset.write_text("".join(rows[:1] + rows[1::2]))  # every other row
    version = data.register(ctx, "dev", ASSET, str(subset))  # the newest: train takes it
    challenger = release_up_to_share(ctx)
    result = lifecycle.examine(ctx, "prod", challenger)
    champion_onnx = home / "registry" / MODEL / "1" / "model" / "model.onnx"
    seed, fraction = 42, 0.2
    _, expected, _ = evaluate.exam(subset, seed, fraction, {"champion": champion_onnx})
    assert result.champion.metrics == expected["champion"]
    assert f"data/{ASSET}/{version.version}/" in result.paper  # the challenger's data version
    recorded = {k: float(v) for k, v in result.champion_model.metrics.items()}
    assert result.champion.metrics != recorded  # another exam than the champion's own
    # The champion trained on rows of the subset's held-out split, so it scores high:
    # overlapping data leans the comparison towards keeping the champion (fail closed).
    # without the challenger's data the exam cannot be set: the gate refuses (the gate reads
    # the registry's copy, shared with the model)
    shared = ctx.backend("prod").get_shared_data(ASSET, version.version)
    assert shared is not None, "sharing the challenger shares its training data"
    stored = Path(shared.location)
    kept = stored.read_bytes()
    stored.write_text("".join(rows[:50]))  # the version's file no longer holds its bytes
    try:
        with pytest.raises(GateRefused, match="cannot set the same exam"):
            lifecycle.gate(ctx, "prod", challenger)
    finally:
        stored.write_bytes(kept)


def test_the_exam_scores_the_served_artifact_like_the_training_run_did(world):
    repo, home, ctx = world
    result = lifecycle.gate(ctx, "prod", f"{MODEL}:1")
    recorded = {k: float(v) for k, v in result.challenger.metrics.items()}
    assert result.figures == pytest.approx(recorded, abs=1e-6)  # same rows, same bytes
    assert re.search(r"breast_cancer\.csv \(sha256 [0-9a-f]{12}…\), seed 42", result.paper)


def test_a_split_endpoint_is_neither_promoted_from_nor_a_champion(world):
    repo, home, ctx = world
    lifecycle.deploy(ctx, "preprod", f"{MODEL}:1")
    lifecycle.test(ctx, "preprod", f"{MODEL}:1")
    with pytest.raises(EndpointTestFailed, match=f"preprod serves {MODEL}:1, not {MODEL}:2"):
        lifecycle.test(ctx, "preprod", f"{MODEL}:2")
    backend = ctx.backend("preprod")
    endpoint = backend.get_endpoint(env_setting("preprod", "endpoint.name"))
    (live,) = endpoint.deployments
    other = "green" if live == "blue" else "blue"
    backend.create_deployment(
        env_setting("preprod", "endpoint.name"), other, backend.get_shared_model(MODEL, 2)
    )
    backend.set_traffic(env_setting("preprod", "endpoint.name"), {live: 50, other: 50})
    try:
        with pytest.raises(GateRefused, match="no deployment of preprod takes all its traffic"):
            lifecycle.promote(ctx, "prod", f"{MODEL}:1")
        champion, model = lifecycle.champion_of(ctx, "preprod")
        assert model is None and "its traffic is split" in champion.problem
    finally:
        backend.set_traffic(env_setting("preprod", "endpoint.name"), {live: 100, other: 0})
        backend.delete_deployment(env_setting("preprod", "endpoint.name"), other)
