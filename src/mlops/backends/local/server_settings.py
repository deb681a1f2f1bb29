"""gunicorn settings for the inference servers behind local endpoints.

`azmlinfsrv` runs gunicorn with `-b 0.0.0.0:PORT -w N --timeout T` on its command line
(azureml_inference_server_http/amlserver_linux.py) and has no option for the address,
so the bind is narrowed to loopback in `on_starting`, which gunicorn calls before it
creates its listeners (gunicorn/arbiter.py, Arbiter.start). The rest are settings that
command line leaves alone. Loaded through GUNICORN_CMD_ARGS="-c python:<this module>".

Behind a local endpoint a server answers only its router: the router sends the endpoint's
internal token (INTERNAL_TOKEN_HEADER) that the server was started with (INTERNAL_TOKEN_VARIABLE);
without it, only the liveness route answers. So the endpoint's key cannot be gone around
through a server's own port, and the traffic kind a server records comes from the router.
"""

import hmac
import json
import os

INTERNAL_TOKEN_VARIABLE = "MLOPS_INTERNAL_TOKEN"
INTERNAL_TOKEN_HEADER = "x-mlops-internal"
_ENVIRON_KEY = "HTTP_" + INTERNAL_TOKEN_HEADER.upper().replace("-", "_")

# Threads, not one synchronous worker: an idle or slow client waits in gthread's poller
# (gunicorn/workers/gthread.py) instead of holding the only worker until its timeout.
worker_class = "gthread"
threads = int(os.environ.get("MLOPS_SERVER_THREADS", "4"))
keepalive = 5  # seconds an idle kept-alive connection may stay open
backlog = 1024  # pending connections the kernel queues during a burst
graceful_timeout = 5  # seconds a stopping server gives requests in flight (gunicorn: 30)


def on_starting(server) -> None:
    port = os.environ["SERVER_PORT"]  # set by azmlinfsrv from its --port
    server.cfg.set("bind", [f"127.0.0.1:{port}"])


def post_worker_init(worker) -> None:
    """Wrap the worker's application: gunicorn calls this after it loaded the app into
    worker.wsgi and before the worker serves (gunicorn/workers/base.py, Worker.init_process)."""
    token = os.environ.get(INTERNAL_TOKEN_VARIABLE)
    if token:
        worker.wsgi = only_from_router(worker.wsgi, token)


def only_from_router(app, token: str):
    """The WSGI app, answering 403 to any request but liveness (GET /) without the token."""
    expected = token.encode()
    refusal = json.dumps({"error": "this server answers its endpoint's router only"}).encode()

    def guarded(environ, start_response):
        given = environ.get(_ENVIRON_KEY, "").encode("latin-1", "replace")
        liveness = environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == "/"
        if liveness or hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(refusal)))],
        )
        return [refusal]

    return guarded
