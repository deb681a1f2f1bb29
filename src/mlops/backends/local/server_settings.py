"""gunicorn settings for the inference servers behind local endpoints.

`azmlinfsrv` runs gunicorn with `-b 0.0.0.0:PORT -w N --timeout T` on its command line
(azureml_inference_server_http/amlserver_linux.py) and has no option for the address,
so the bind is narrowed to loopback in `on_starting`, which gunicorn calls before it
creates its listeners (gunicorn/arbiter.py, Arbiter.start). The rest are settings that
command line leaves alone. Loaded through GUNICORN_CMD_ARGS="-c python:<this module>".
"""

import os

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
