"""Lifecycle events: the record, the append-only log, the webhook (a real HTTP server on
loopback that accepts, fails or hangs), the environment file's refusals, and the audit trail
read back from the shared registry."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops import config, events, history
from mlops.backends.base import ModelVersion
from mlops.context import Context
from mlops.errors import ConfigError
from mlops.progress import Progress

ACTIONS_RUN = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTOR": "octo-release",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/mlops",
    "GITHUB_RUN_ID": "4242",
}


@pytest.fixture
def in_actions(monkeypatch):
    for name, value in ACTIONS_RUN.items():
        monkeypatch.setenv(name, value)
    for name in ("GITHUB_REF", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def outside_actions(monkeypatch):
    for name in (*ACTIONS_RUN, "GITHUB_REF", "GITHUB_EVENT_PATH"):
        monkeypatch.delenv(name, raising=False)


class Webhook:
    """A real HTTP server on 127.0.0.1 that answers every POST as `mode` says: accept (204),
    fail (500) or hang (never answer until the test ends)."""

    def __init__(self, mode: str):
        self.mode, self.received, self.release = mode, [], threading.Event()
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hook.received.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                if hook.mode == "hang":
                    hook.release.wait(30)
                    return
                self.send_response({"accept": 204, "fail": 500, "redirect": 307}[hook.mode])
                if hook.mode == "redirect":
                    self.send_header("Location", "/elsewhere")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(request):
    hook = Webhook(request.param)
    yield hook
    hook.close()


def with_webhook(repo: Path, env: str, url: str) -> None:
    path = repo / "environments" / f"{env}.yml"
    path.write_text(path.read_text() + f"\nevents:\n  webhook: {url}\n")


def context(repo: Path, home: Path, lines: list[str]) -> Context:
    ctx = Context(repo, home, "local", Progress())
    ctx.say = lines.append  # type: ignore[method-assign]
    ctx.event_sinks[0].say = lines.append
    return ctx


# ---- the record ---------------------------------------------------------------------------


def test_an_event_in_actions_names_the_actor_commit_and_run(in_actions, repo, tmp_path):
    captured: list[events.Event] = []
    ctx = Context(repo, tmp_path / "home", "local", Progress())
    ctx.event_sinks.append(captured.append)
    ctx.emit(events.MODEL_SHARED, "dev", "clf:3", "f" * 64)
    (event,) = captured
    assert event.kind == "model.shared" and event.environment == "dev"
    assert event.model == "clf:3" and event.sha256 == "f" * 64
    assert event.actor == "octo-release" and event.commit == "a" * 40
    assert event.run == "https://github.com/acme/mlops/actions/runs/4242"
    assert event.time.endswith("+00:00")
    (logged,) = events.read_lines(tmp_path / "home" / events.LOG_FILE)
    assert logged == event.as_dict()


def test_outside_actions_the_actor_is_the_local_user(outside_actions, repo, tmp_path):
    import getpass

    event = events.make(events.MODEL_REGISTERED, "dev", repo, "clf:1")
    assert event.actor == getpass.getuser()
    assert event.run is None
    assert event.commit  # the checkout's HEAD, or "uncommitted" outside git


def test_an_unknown_kind_is_a_programming_error(repo):
    with pytest.raises(ValueError, match="unknown event kind"):
        events.make("model.teleported", "dev", repo)


@pytest.mark.parametrize(
    ("ref", "payload", "number"),
    [
        ("refs/pull/17/merge", None, 17),
        ("refs/heads/main", {"pull_request": {"number": 23}}, 23),
        ("refs/heads/main", {"head_commit": {"message": "Merge pull request #31 from a/b"}}, 31),
        (
            "refs/heads/main",
            {"head_commit": {"message": "Promote clf:4 to prod (#44)\n\nbody"}},
            44,
        ),
        ("refs/heads/main", {"head_commit": {"message": "a direct push"}}, None),
        ("refs/heads/main", None, None),
    ],
)
def test_the_pull_request_behind_a_run(monkeypatch, tmp_path, ref, payload, number):
    monkeypatch.setenv("GITHUB_REF", ref)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    if payload is not None:
        (tmp_path / "event.json").write_text(json.dumps(payload))
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    assert events.pull_request() == number


def test_concurrent_appends_leave_whole_lines(tmp_path):
    log = tmp_path / "events.jsonl"
    record = {"kind": "x", "details": {"pad": "y" * 5000}}

    def write(n):
        for i in range(50):
            events.append_line(log, {**record, "n": n, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = log.read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["details"] == record["details"] for line in lines)


def test_a_record_after_a_torn_line_keeps_a_line_of_its_own_and_the_torn_one_is_counted(
    tmp_path,
):
    log = tmp_path / "events.jsonl"
    events.append_line(log, {"kind": "first"})
    with log.open("ab") as handle:
        handle.write(b'{"kind": "torn by a kill')  # no line break: its writer died mid-write
    events.append_line(log, {"kind": "next"})
    found = events.read_counted(log)
    assert [r["kind"] for r in found.records] == ["first", "next"]
    assert found.unreadable == 1
    assert oct(log.stat().st_mode & 0o777) == "0o600"


# ---- the environment file ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/events",  # clear text across a network
        "ftp://hooks.example.com/events",
        "https:///no-host",
        "https://hooks.example.com/a path",
        "http://127.0.0.1:notaport/x",
        "hooks.example.com/events",
    ],
)
def test_a_bad_webhook_is_refused_in_one_sentence(repo, url):
    with_webhook(repo, "dev", f"'{url}'")
    with pytest.raises(ConfigError, match=r"environments/dev.yml: field `events.webhook` "):
        config.load("dev", repo)


def test_an_unknown_events_key_is_refused(repo):
    path = repo / "environments" / "dev.yml"
    path.write_text(path.read_text() + "\nevents:\n  webhok: https://hooks.example.com/x\n")
    with pytest.raises(ConfigError, match="did you mean webhook"):
        config.load("dev", repo)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/events?k=1", "http://127.0.0.1:8080/x", "http://localhost/x"]
)
def test_https_or_loopback_http_is_taken(repo, url):
    with_webhook(repo, "dev", url)
    assert config.load("dev", repo).events_webhook == url
    assert config.load("preprod", repo).events_webhook is None


# ---- the webhook ---------------------------------------------------------------------------


@pytest.mark.parametrize("webhook", ["accept"], indirect=True)
def test_the_webhook_gets_the_event_as_json(repo, tmp_path, webhook):
    with_webhook(repo, "dev", webhook.url)
    lines: list[str] = []
    ctx = context(repo, tmp_path / "home", lines)
    event = ctx.emit(events.MODEL_REGISTERED, "dev", "clf:2", "e" * 64, job="job-1")
    assert webhook.received == [event.as_dict()]
    assert webhook.received[0]["details"] == {"job": "job-1"}
    assert [r["kind"] for r in events.read_lines(tmp_path / "home" / events.LOG_FILE)] == [
        "model.registered"
    ]
    assert lines == []


@pytest.mark.parametrize("webhook", ["fail", "hang", "redirect"], indirect=True)
def test_a_failing_webhook_is_said_and_logged_never_raised(repo, tmp_path, webhook, monkeypatch):
    monkeypatch.setattr(events, "WEBHOOK_SECONDS", 1.5)  # keeps the hanging case short
    with_webhook(repo, "dev", webhook.url)
    lines: list[str] = []
    ctx = context(repo, tmp_path / "home", lines)
    ctx.emit(events.MODEL_SHARED, "dev", "clf:2", "e" * 64)
    expected_tries = 1 if webhook.mode == "hang" else events.WEBHOOK_TRIES
    assert len(webhook.received) == expected_tries
    assert set(webhook.paths) == {"/hook"}, "a redirect is never followed"
    (said,) = lines
    assert said.startswith("warning: the events webhook did not take model.shared: ")
    shared, failed = events.read_lines(tmp_path / "home" / events.LOG_FILE)
    assert shared["kind"] == "model.shared"
    assert failed["kind"] == "webhook.failed"
    assert failed["details"]["event"] == "model.shared"
    assert failed["details"]["event_time"] == shared["time"]
    problem = failed["details"]["problem"]
    if webhook.mode != "hang":
        code = 500 if webhook.mode == "fail" else 307
        assert problem == f"HTTP {code} after {events.WEBHOOK_TRIES} tries"
    else:
        assert "within 1.5 s" in problem or "timed out" in problem
    assert webhook.url not in said + json.dumps(failed)  # a webhook URL can hold a secret


def test_an_unreachable_webhook_is_said_and_logged(repo, tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with_webhook(repo, "dev", f"http://127.0.0.1:{port}/hook")
    lines: list[str] = []
    ctx = context(repo, tmp_path / "home", lines)
    ctx.emit(events.TRAINING_FAILED, "dev", error="boom")
    (said,) = lines
    assert "training.failed" in said and "refused" in said.lower()


# ---- the audit trail, read back from the shared registry -----------------------------------


class Registry:
    """A shared registry of one model's versions, tagged as the seam says."""

    def __init__(self):
        self.versions = {
            v: ModelVersion("clf", v, {"onnx_sha256": f"{v}" * 64}, f"{v}" * 64, "") for v in (1, 2)
        }
        self.refuse = False

    def list_shared_models(self, name):
        return list(self.versions.values())

    def tag_shared_model(self, model, tags):
        from mlops.errors import MlopsError

        if self.refuse:
            raise MlopsError("AuthorizationFailed")
        old = self.versions[model.version]
        self.versions[model.version] = ModelVersion(
            old.name, old.version, {**old.tags, **tags}, old.artifact_sha256, ""
        )
        return self.versions[model.version]


def test_history_reads_entries_back_newest_first_per_environment(in_actions, repo, tmp_path):
    registry = Registry()
    ctx = Context(repo, tmp_path / "home", "local", Progress(), backend_factory=lambda c: registry)
    one, two = registry.versions[1], registry.versions[2]
    history.record(ctx, "prod", history.DEPLOYED, one, "ep-prod", "blue")
    history.record(ctx, "preprod", history.DEPLOYED, two, "ep-preprod", "green")
    history.record(ctx, "prod", history.ROLLED_BACK, two, "ep-prod")
    history.record(ctx, "prod", history.PROMOTED, two)
    fresh = Context(
        repo, tmp_path / "fresh", "local", Progress(), backend_factory=lambda c: registry
    )
    found = history.entries(fresh, "prod")  # a new runner: nothing local
    assert [(e.action, e.model) for e in found] == [
        ("promoted", "clf:2"),
        ("rolled back", "clf:2"),
        ("deployed", "clf:1"),
    ]
    deployed = found[-1]
    assert deployed.sha256 == "1" * 64 and deployed.actor == "octo-release"
    assert deployed.commit == "a" * 40 and deployed.endpoint == "ep-prod"
    assert deployed.deployment == "blue"
    assert deployed.run == "https://github.com/acme/mlops/actions/runs/4242"
    local = events.read_lines(tmp_path / "home" / "prod" / history.HISTORY_FILE)
    assert [r["action"] for r in local] == ["deployed", "rolled back", "promoted"]
    logged = events.read_lines(tmp_path / "home" / events.LOG_FILE)
    assert [(r["kind"], r["environment"]) for r in logged] == [
        ("model.deployed", "prod"),
        ("model.deployed", "preprod"),
        ("deployment.rolled_back", "prod"),
        ("model.promoted", "prod"),
    ]
    assert logged[0]["details"] == {"endpoint": "ep-prod", "deployment": "blue"}
    shown = history.lines(found)
    assert "deployed" in shown[-1] and "sha256 111111111111" in shown[-1]
    assert "by octo-release" in shown[-1] and "commit aaaaaaaaaaaa" in shown[-1]
    section = history.markdown(found, last=2)
    assert "](https://github.com/acme/mlops/actions/runs/4242)" in section
    assert section.count("\n- ") == 2


def test_history_orders_entries_by_their_utc_instant_across_a_year_end(
    in_actions, repo, tmp_path, time_machine
):
    """Entries written a second either side of a year's end, and two written by hand in other
    forms (an offset, no zone at all): newest first by the instant, not by the text."""
    registry = Registry()
    ctx = Context(repo, tmp_path / "home", "local", Progress(), backend_factory=lambda c: registry)
    one, two = registry.versions[1], registry.versions[2]
    year_end = datetime(datetime.now(UTC).year, 12, 31, 23, 59, 59, tzinfo=UTC)
    time_machine.move_to(year_end, tick=False)
    history.record(ctx, "prod", history.DEPLOYED, one, "ep-prod", "blue")
    time_machine.move_to(year_end + timedelta(seconds=2), tick=False)
    history.record(ctx, "prod", history.DEPLOYED, two, "ep-prod", "green")
    new_year = year_end.year + 1
    by_hand = {
        f"{new_year}-01-01T00:30:00+01:00": history.ROLLED_BACK,  # 23:30 UTC, the oldest
        f"{new_year}-01-01T00:00:00": history.PROMOTED,  # no zone: UTC, between the two
    }
    for n, (when, action) in enumerate(by_hand.items()):
        value = json.dumps({"action": action, "time": when, "actor": "a", "commit": "c"})
        registry.tag_shared_model(one, {f"{history.TAG_PREFIX}prod.by-hand-{n}": value})
    found = history.entries(ctx, "prod")
    assert [(e.action, e.model) for e in found] == [
        ("deployed", "clf:2"),
        ("promoted", "clf:1"),
        ("deployed", "clf:1"),
        ("rolled back", "clf:1"),
    ]
    assert found[0].time == f"{new_year}-01-01T00:00:01.000000+00:00"


def test_a_refused_registry_tag_is_a_warning_and_the_local_entry_stays(
    outside_actions, repo, tmp_path
):
    registry = Registry()
    registry.refuse = True
    lines: list[str] = []
    ctx = Context(repo, tmp_path / "home", "local", Progress(), backend_factory=lambda c: registry)
    ctx.say = lines.append  # type: ignore[method-assign]
    history.record(ctx, "prod", history.DEPLOYED, registry.versions[1], "ep-prod", "blue")
    (said,) = lines
    assert said.startswith("warning: the audit entry is not on clf:1 in the registry")
    assert len(events.read_lines(tmp_path / "home" / "prod" / history.HISTORY_FILE)) == 1


def test_a_tag_edited_by_hand_is_skipped(repo, tmp_path):
    registry = Registry()
    registry.versions[1].tags["audit.prod.20260101T000000.000Z"] = "not json"
    ctx = Context(repo, tmp_path / "home", "local", Progress(), backend_factory=lambda c: registry)
    assert history.entries(ctx, "prod") == []


def test_history_on_a_fresh_home_says_there_is_none_yet(repo, tmp_path, monkeypatch, capsys):
    from mlops import cli

    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS_BACKEND", "local")
    assert cli.main(["history", "--env", "prod"]) == 0
    assert "no audit entries for prod yet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        cli.main(["history", "--env", "prod", "--last", "0"])
    assert refused.value.code == 2


def test_history_counts_the_torn_lines_of_the_local_logs(repo, tmp_path, monkeypatch, capsys):
    from mlops import cli

    home = tmp_path / "home"
    events.append_line(home / "prod" / history.HISTORY_FILE, {"action": "deployed"})
    with (home / "prod" / history.HISTORY_FILE).open("a") as handle:
        handle.write('{"action": "depl')  # a command killed mid-write
    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_BACKEND", "local")
    assert cli.main(["history", "--env", "prod"]) == 0
    assert "1 unreadable line(s) in " in capsys.readouterr().out
