"""What the local backend hands the monitor: clients' rows of one model in a window, and {} for
each line it cannot read (the monitor counts those)."""

import json
from datetime import UTC, datetime, timedelta

from helpers import ROOT

from mlops import config
from mlops.backends.local.backend import LocalBackend

NOW = datetime.now(UTC)


def line(request_id, minutes_ago=0, **fields) -> str:
    record = {
        "request_id": request_id,
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds"),
        "deployment": "mlops-prod/blue",
        "model": "m:2",
        "traffic": "live",
        "inputs": [{"id": request_id}],
        "outputs": {},
        **fields,
    }
    return json.dumps(record) + "\n"


def test_only_live_rows_of_the_model_in_the_window_and_a_marker_per_torn_line(tmp_path):
    backend = LocalBackend(config.load("prod", ROOT), ROOT, tmp_path)
    folder = tmp_path / "prod" / "collected"
    folder.mkdir(parents=True)
    century_ago = NOW - timedelta(days=36525)
    (folder / f"inference-{century_ago:%Y%m%d}.jsonl").write_text(line("from-another-century"))
    (folder / f"inference-{NOW:%Y%m%d}.jsonl").write_text(
        line("live")
        + line("old", minutes_ago=120)
        + line("mirrored", traffic="mirror")
        + line("smoke", traffic="smoke")
        + line("probe", traffic="probe")
        + line("older-model", model="m:1")
        + line("other-endpoint", deployment="mlops-preprod/blue")
        + line("before-traffic-marks").replace(', "traffic": "live"', "")
        + '{"request_id": "torn", "inp\n'
        + line("inputs-not-a-list", inputs=7)
        + line("row-not-an-object", inputs=[3])
        + "\n"
    )
    rows = list(backend.collected_rows("mlops-prod", model="m:2", since=NOW - timedelta(hours=1)))
    assert rows == [{"id": "live"}, {"id": "before-traffic-marks"}, {}, {}, {}]
    everything = list(backend.collected_rows("mlops-prod"))
    assert {"id": "from-another-century"} in everything and {"id": "older-model"} in everything
