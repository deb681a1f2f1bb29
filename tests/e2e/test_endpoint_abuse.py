"""A local endpoint under abuse: every malformed, unauthorised, slow or idle client gets a 4xx
with a JSON sentence (or nothing it can hold on to), and the next good request is answered.

One model is trained and deployed to preprod for the whole module. Every loop is bounded and
talks to 127.0.0.1 only. The table of cases, status codes and latencies is written to the
state home (abuse-table.md) and printed (`pytest -s`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from endpoint_client import MODEL, Answer, Endpoint, fresh_home, read_answer
from helpers import env_setting, run_mlops

PROMPT_S = 10  # the socket timeout a good request gets: an answer within it is prompt
CONNECTION_CAP = 96  # above the 64 clients of the burst test, below the router's default
TABLE: list[tuple[str, int, float]] = []


@pytest.fixture(scope="module")
def world(shared_model, tmp_path_factory):
    """The shared model deployed to preprod; stopped at the end."""
    repo, home = fresh_home(shared_model, tmp_path_factory.mktemp("abuse") / "home")
    # the router takes its connection cap from the deploy that starts it
    cap = {"MLOPS_ROUTER_MAX_CONNECTIONS": str(CONNECTION_CAP)}
    run_mlops(repo, home, "deploy", "--env", "preprod", "--model", f"{MODEL}:1", extra_env=cap)
    yield repo, home
    run_mlops(repo, home, "down", "--all")
    table = ["| case | status | latency (ms) |", "| --- | ---: | ---: |"]
    table += [f"| {case} | {status} | {seconds * 1000:.0f} |" for case, status, seconds in TABLE]
    (home.parent / "abuse-table.md").write_text("\n".join(table) + "\n")
    print("\n" + "\n".join(table))


@pytest.fixture(scope="module")
def endpoint(world) -> Endpoint:
    return Endpoint.of(world[1], "preprod")


@pytest.fixture(scope="module")
def sample(world) -> bytes:
    return (world[0] / "src" / "model" / "sample-request.json").read_bytes()


def good_request_answered(endpoint: Endpoint, sample: bytes) -> None:
    answer = endpoint.send(endpoint.request(sample), timeout=PROMPT_S)
    assert answer.status == 200, answer.body
    assert len(answer.json()["predictions"]) == len(json.loads(sample)["data"])


def refused(case: str, answer: Answer, expected: int) -> None:
    TABLE.append((case, answer.status, answer.seconds))
    assert answer.status == expected, (case, answer.status, answer.body[:300])
    assert answer.headers.get("content-type") == "application/json", case
    if answer.body or expected != 405:  # a HEAD's answer has no body, by HTTP's rules
        message = answer.json()["error"]
        assert message and "\n" not in message, case


def value_request(sample: bytes, literal: str) -> bytes:
    """The sample with its first value replaced by a JSON literal, written as is."""
    row = json.loads(sample)["data"][0]
    first = next(iter(row))
    return json.dumps({"data": [{**row, first: "HERE"}]}).replace('"HERE"', literal).encode()


# ---- the contract: what the router and the scoring script refuse -------------------------

BODY_CASES = {
    "not JSON": (b"rows please", 400),
    "integer of 401 digits": (None, 400),
    "100 000 nested brackets": (b"[" * 100_000 + b"]" * 100_000, 400),
    "100 000 unclosed brackets": (b'{"data": ' + b"[" * 100_000, 400),
    "1e300": (None, 400),
    "-1e300": (None, 400),
    "3.5e38 (beyond float32)": (None, 400),
    "NaN": (None, 400),
    "empty batch": (b'{"data": []}', 400),
    "1001 rows": (None, 400),
}


@pytest.mark.parametrize("case", list(BODY_CASES))
def test_a_body_the_contract_refuses_is_a_400(endpoint, sample, case):
    body, expected = BODY_CASES[case]
    literals = {
        "integer of 401 digits": "1" * 401,
        "1e300": "1e300",
        "-1e300": "-1e300",
        "3.5e38 (beyond float32)": "3.5e38",
        "NaN": "NaN",
    }
    if case in literals:
        body = value_request(sample, literals[case])
    if case == "1001 rows":
        body = json.dumps({"data": json.loads(sample)["data"][:1] * 1001}).encode()
    refused(case, endpoint.send(endpoint.request(body)), expected)
    good_request_answered(endpoint, sample)


def _cases(endpoint: Endpoint, sample: bytes) -> dict[str, tuple[bytes, int, bool]]:
    """case -> (bytes sent, expected status, half-close after sending)."""
    ok = endpoint.request
    key = f"Bearer {endpoint.key}"
    return {
        "no key": (ok(sample, key=False), 401, False),
        "wrong key": (ok(sample, headers={"Authorization": "Bearer nope"}), 401, False),
        "Basic instead of Bearer": (
            ok(sample, headers={"Authorization": f"Basic {endpoint.key}"}),
            401,
            False,
        ),
        "PUT": (ok(sample, method="PUT"), 405, False),
        "DELETE": (ok(b"", method="DELETE"), 405, False),
        "PATCH": (ok(sample, method="PATCH"), 405, False),
        "OPTIONS": (ok(b"", method="OPTIONS"), 405, False),
        "TRACE": (ok(b"", method="TRACE"), 405, False),
        "HEAD": (ok(b"", method="HEAD"), 405, False),
        "made-up method BREW": (ok(b"", method="BREW"), 405, False),
        "GET /score": (ok(b"", method="GET"), 405, False),
        "unknown path": (ok(sample, path="/admin"), 404, False),
        "POST /swagger.json": (ok(sample, path="/swagger.json"), 405, False),
        "Content-Length: abc": (ok(sample, headers={"Content-Length": "abc"}), 400, False),
        "Content-Length: -1": (ok(sample, headers={"Content-Length": "-1"}), 400, False),
        "Content-Length: 1e3": (ok(sample, headers={"Content-Length": "1e3"}), 400, False),
        "two Content-Lengths": (
            ok(sample).replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1),
            400,
            False,
        ),
        "no Content-Length": (ok(sample, headers={"Content-Length": None}), 411, False),
        "Transfer-Encoding: chunked": (
            ok(b"5\r\nhello\r\n0\r\n\r\n", headers={"Transfer-Encoding": "chunked"}),
            411,
            False,
        ),
        "declared 50 MB": (ok(b"", headers={"Content-Length": str(50 << 20)}), 413, False),
        "declared 10^30 bytes": (ok(b"", headers={"Content-Length": "1" + "0" * 30}), 413, False),
        "more declared than sent, then half-closed": (
            ok(sample, headers={"Content-Length": str(len(sample) + 100)}),
            400,
            True,
        ),
        "garbage request line": (b"HELLO\r\n\r\n", 400, False),
        "HTTP/0.9 request line": (b"GET /score\r\n\r\n", 400, False),
        "HTTP/9.9 request line": (ok(sample).replace(b"HTTP/1.1", b"HTTP/9.9", 1), 400, False),
        "control byte in path": (ok(sample, path="/sc\x01ore"), 400, False),
        "non-ASCII byte in path": (ok(sample, path="/sc\xf6re"), 400, False),
        "request line of 20 000 bytes": (ok(sample, path="/" + "a" * 20_000), 414, False),
        "header line of 70 000 bytes": (ok(sample, headers={"X-Big": "b" * 70_000}), 431, False),
        "200 headers": (
            ok(sample, headers={f"X-H{i}": "1" for i in range(200)}),
            431,
            False,
        ),
        "x-request-id with spaces": (ok(sample, headers={"x-request-id": "a b"}), 400, False),
        "x-request-id of 500 chars": (ok(sample, headers={"x-request-id": "a" * 500}), 400, False),
        "claims to be mirrored traffic": (
            ok(sample, headers={"x-mlops-traffic": "mirror"}),
            400,
            False,
        ),
        "unknown deployment header": (
            ok(sample, headers={"azureml-model-deployment": "purple"}),
            404,
            False,
        ),
        "headers cut short, then half-closed": (
            f"POST /score HTTP/1.1\r\nAuthorization: {key}\r\nContent-Le".encode(),
            411,
            True,
        ),
    }


def test_every_malformed_or_unauthorised_request_gets_a_4xx_json_sentence(endpoint, sample):
    for case, (raw, expected, half_close) in _cases(endpoint, sample).items():
        refused(case, endpoint.send(raw, half_close=half_close), expected)
        good_request_answered(endpoint, sample)


def test_the_endpoint_echoes_the_request_id_and_names_the_deployment(endpoint, sample):
    answer = endpoint.send(endpoint.request(sample, headers={"x-request-id": "abc-123"}))
    assert answer.status == 200
    assert answer.headers["x-request-id"] == "abc-123"
    assert answer.headers["azureml-model-deployment"] == "blue"
    generated = endpoint.send(endpoint.request(sample))
    assert len(generated.headers["x-request-id"]) == 36  # one is made when the client sent none


# ---- connections: idle, slow, half-sent, many at once ----------------------------------


def test_idle_connections_do_not_stall_the_endpoint(endpoint, sample):
    idle = [
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=PROMPT_S) for _ in range(20)
    ]
    try:
        started = time.monotonic()
        good_request_answered(endpoint, sample)
        TABLE.append(("good request beside 20 idle connections", 200, time.monotonic() - started))
        timed_out = endpoint.send(b"", timeout=PROMPT_S)  # an idle one of our own, to the end
        refused("idle connection, until the read timeout", timed_out, 408)
    finally:
        for sock in idle:
            sock.close()


def test_a_body_shorter_than_declared_is_a_400_and_blocks_no_one(endpoint, sample):
    raw = endpoint.request(sample, headers={"Content-Length": str(len(sample) + 100)})
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(endpoint.send, raw)
        time.sleep(0.5)  # the slow one is waiting for its missing bytes now
        started = time.monotonic()
        good_request_answered(endpoint, sample)
        TABLE.append(("good request beside a short body", 200, time.monotonic() - started))
        assert not slow.done(), "the short body should still be waiting for its bytes"
        refused("more declared than sent (read timeout)", slow.result(timeout=60), 400)


def test_a_client_trickling_its_headers_blocks_no_one(endpoint, sample):
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=60) as slow:
        slow.sendall(b"POST /score HTTP/1.1\r\n")
        for _ in range(3):  # a byte a second, bounded
            slow.sendall(b"X")
            time.sleep(1)
            good_request_answered(endpoint, sample)
        started = time.monotonic()
        answer = read_answer(slow)
        answer.seconds = time.monotonic() - started
        refused("headers trickled a byte a second", answer, 408)


def test_headers_trickled_within_the_read_timeout_still_end_at_the_deadline(endpoint):
    """A byte every 2 s never meets the 5 s per-read timeout; the 10 s header deadline ends
    it (router.HEADER_DEADLINE_S)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=30) as slow:
        slow.sendall(b"POST /score HTTP/1.1\r\nX-Slow: ")
        with contextlib.suppress(OSError):  # the router may answer and close between bytes
            for _ in range(9):  # 18 s at most, bounded
                time.sleep(2)
                slow.sendall(b"x")
        answer = read_answer(slow)
    answer.seconds = time.monotonic() - started
    refused("headers trickled a byte every 2 s", answer, 408)
    assert answer.seconds < 16, answer.seconds  # the deadline, not the trickle, ended it


def test_connections_past_the_cap_get_a_503_and_the_endpoint_recovers(endpoint, sample):
    held = [
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=PROMPT_S)
        for _ in range(CONNECTION_CAP)
    ]
    try:
        time.sleep(0.5)  # each accepted: the router counts them open
        turned_away = endpoint.send(endpoint.request(sample), timeout=PROMPT_S)
        refused("a connection past the cap", turned_away, 503)
        assert turned_away.headers["retry-after"] == "2"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30  # the router notices the closes at its next read
    while endpoint.send(endpoint.request(sample), timeout=PROMPT_S).status != 200:
        assert time.monotonic() < deadline, "the endpoint did not take connections again"
        time.sleep(0.2)


def test_a_burst_of_64_clients_is_queued_not_reset(endpoint, sample):
    raw = endpoint.request(sample)
    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(lambda _: endpoint.send(raw, timeout=60), range(64)))
    assert [a.status for a in answers] == [200] * 64
    TABLE.append(("slowest of 64 concurrent clients", 200, max(a.seconds for a in answers)))
    good_request_answered(endpoint, sample)


def test_health_says_whether_the_live_deployment_answers(endpoint):
    answer = endpoint.send(endpoint.request(b"", method="GET", path="/", key=False))
    assert (answer.status, answer.body) == (200, b"Healthy")


def test_a_deployment_server_answers_its_router_only(world, sample):
    """Its own port would be a way around the endpoint's key, and around the router's
    traffic marks (a client could mark its requests as mirror copies)."""
    state = json.loads(endpoint_state_path(world[1]).read_text())
    (record,) = state["deployments"].values()
    server = Endpoint(record["port"], key="")
    for case, headers in {
        "a server's own port, no key": {},
        "a server's own port, marked as a mirror copy": {"x-mlops-traffic": "mirror"},
        "a server's own port, a wrong internal token": {"x-mlops-internal": "guess"},
    }.items():
        refused(case, server.send(server.request(sample, headers=headers, key=False)), 403)
    api = server.send(server.request(b"", method="GET", path="/swagger.json", key=False))
    refused("a server's own API document", api, 403)
    liveness = server.send(server.request(b"", method="GET", path="/", key=False))
    assert liveness.status == 200  # what the router's health check and start-up wait read


def test_the_state_home_is_this_users_only(world):
    home = world[1]
    mode = lambda path: oct(path.stat().st_mode & 0o777)  # noqa: E731
    assert {mode(home), mode(home / "preprod")} == {"0o700"}
    folder = endpoint_state_path(home).parent
    files = [
        home / "dev" / "mlflow.db",
        *(home / "preprod" / "collected").glob("inference-*.jsonl"),
        folder / "router.log",
        *folder.glob("deployments/*/server.log"),
        endpoint_state_path(home),
    ]
    assert {path.name: mode(path) for path in files} == {path.name: "0o600" for path in files}


def endpoint_state_path(home):
    return (
        home / "preprod" / "endpoints" / env_setting("preprod", "endpoint.name") / "endpoint.json"
    )


def test_deployments_listen_on_loopback_only(world):
    import psutil

    home = world[1]
    state = json.loads(
        (
            home
            / "preprod"
            / "endpoints"
            / env_setting("preprod", "endpoint.name")
            / "endpoint.json"
        ).read_text()
    )
    ports = {state["port"]} | {d["port"] for d in state["deployments"].values()}
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }
    assert {port for _, port in listening} == ports
    assert {ip for ip, _ in listening} == {"127.0.0.1"}


def collected_records(home) -> dict[str, dict]:
    """The collected records of the module's endpoint, by request id."""
    lines = (home / "preprod" / "collected").glob("inference-*.jsonl")
    records = (json.loads(line) for path in lines for line in path.read_text().splitlines())
    return {record["request_id"]: record for record in records}


def monitored_rows(home, records: list[dict]) -> int:
    """How many input rows of these records the monitor's reader counts as live traffic."""
    from mlops.backends.local.collected import CollectedJsonLines

    picked = home.parent / "picked.jsonl"
    picked.write_text("".join(json.dumps(record) + "\n" for record in records))
    endpoint = env_setting("preprod", "endpoint.name")
    return sum(1 for row in CollectedJsonLines([picked], endpoint, None, None) if row)


def test_only_the_lifecycle_can_keep_its_requests_out_of_monitoring(world, endpoint, sample):
    """A smoke or probe mark holds only with the endpoint's internal token, which the
    lifecycle reads from the endpoint's state and no client is given: a client holding the
    key cannot hide its requests from the monitor."""
    home = world[1]
    token = json.loads(endpoint_state_path(home).read_text())["internal_token"]
    cases = {
        "client-says-smoke": ({"x-mlops-traffic": "smoke"}, "live"),
        "client-says-probe": ({"x-mlops-traffic": "probe", "x-mlops-internal": "guess"}, "live"),
        "owner-says-probe": ({"x-mlops-traffic": "probe", "x-mlops-internal": token}, "probe"),
    }
    for request_id, (headers, _) in cases.items():
        answer = endpoint.send(
            endpoint.request(sample, headers={**headers, "x-request-id": request_id})
        )
        assert answer.status == 200, (request_id, answer.body)
    records = collected_records(home)
    assert {rid: records[rid]["traffic"] for rid in cases} == {
        rid: kind for rid, (_, kind) in cases.items()
    }
    rows = len(json.loads(sample)["data"])
    assert (
        monitored_rows(home, [records["client-says-smoke"], records["client-says-probe"]])
        == 2 * rows
    )
    assert monitored_rows(home, [records["owner-says-probe"]]) == 0
    # the deploy's own smoke test went through the router with the token: left out as smoke
    smoke = [record for record in records.values() if record["traffic"] == "smoke"]
    assert smoke and monitored_rows(home, smoke) == 0
    # and what a client is handed (`mlops key`) is the key alone, never the internal token
    key = run_mlops(world[0], home, "key", "--env", "preprod").stdout
    assert token not in key and endpoint.key in key
