"""The rollout's order of operations around autoscale, on a seam double that records each call.

The backends' own parts are tested on their real pieces: the Azure autoscale setting through the
double's transport (tests/azure/test_endpoints.py), the local record through a real endpoint
(tests/e2e/test_local_lifecycle.py). Here only the order the rollout calls them in is judged."""

import pytest

from mlops import rollout as rollout_module
from mlops.backends.base import Deployment, DeploymentFailed, Endpoint, ModelVersion, Response
from mlops.config import Autoscale
from mlops.errors import RolloutFailed
from mlops.smoke import Contract, SmokeResult

SCALE = Autoscale(min_instances=1, max_instances=3, cpu_percent=70, default_instances=1)
MODEL = ModelVersion("m", 2, {}, "sha", "folder")


class RecordingBackend:
    """Endpoints in memory; every seam call appended to `calls` as (verb, deployment)."""

    env = "prod"

    def __init__(self, refuse_autoscale: bool = False):
        self.calls: list[tuple[str, str | None]] = []
        self.traffic: dict[str, int] = {}
        self.deployments: dict[str, Deployment] = {}
        self.scaled: dict[str, Autoscale] = {}
        self.refuse_autoscale = refuse_autoscale

    def _endpoint(self) -> Endpoint:
        return Endpoint("ep", "uri", dict(self.traffic), dict(self.deployments))

    def get_endpoint(self, name):
        return self._endpoint() if self.deployments or self.traffic else None

    def create_endpoint(self, name):
        return self._endpoint()

    def create_deployment(self, endpoint, deployment, model):
        self.calls.append(("create", deployment))
        self.deployments[deployment] = Deployment(deployment, model.ref, "sha", "Succeeded")
        self.traffic.setdefault(deployment, 0)

    def set_autoscale(self, endpoint, deployment, autoscale):
        self.calls.append(("autoscale", deployment))
        if self.refuse_autoscale:
            raise DeploymentFailed("Azure Monitor refused it")
        self.scaled[deployment] = autoscale

    def remove_autoscale(self, endpoint, deployment):
        self.calls.append(("unscale", deployment))
        self.scaled.pop(deployment, None)

    def set_traffic(self, endpoint, traffic):
        live = [name for name, share in traffic.items() if share]
        self.calls.append(("traffic", ",".join(live)))
        self.traffic = {name: traffic.get(name, 0) for name in self.deployments}
        return self._endpoint()

    def delete_deployment(self, endpoint, deployment):
        self.calls.append(("delete", deployment))
        self.deployments.pop(deployment, None)
        self.traffic.pop(deployment, None)

    def deployment_logs(self, endpoint, deployment, lines=40):
        return ""

    def invoke(self, endpoint, body, deployment=None):
        live = deployment or max(self.traffic, key=self.traffic.get)
        return Response(200, b"{}", live)


@pytest.fixture(autouse=True)
def passing_smoke_tests(monkeypatch):
    monkeypatch.setattr(
        rollout_module, "smoke_test", lambda invoke, contract: SmokeResult(True, "ok", 1.0)
    )


def roll(backend, autoscale=SCALE):
    contract = Contract(b"{}", {})
    return rollout_module.rollout(
        backend, "ep", MODEL, contract, say=lambda _: None, autoscale=autoscale
    )


def test_the_new_deployment_scales_before_traffic_and_the_old_loses_its_setting():
    backend = RecordingBackend()
    roll(backend)
    backend.calls.clear()
    roll(backend)
    assert backend.calls == [
        ("create", "green"),
        ("autoscale", "green"),
        ("traffic", "green"),
        ("unscale", "blue"),
        ("delete", "blue"),
    ]
    assert backend.scaled == {"green": SCALE}


def test_a_refused_setting_abandons_the_rollout_before_any_traffic_moves():
    backend = RecordingBackend()
    roll(backend)
    backend.calls.clear()
    backend.refuse_autoscale = True
    with pytest.raises(RolloutFailed, match="deployment 'green' could not be autoscaled"):
        roll(backend)
    assert backend.calls == [
        ("create", "green"),
        ("autoscale", "green"),
        ("unscale", "green"),
        ("delete", "green"),
    ]
    assert backend.traffic == {"blue": 100}


def test_without_a_setting_no_autoscale_setting_is_touched():
    """An environment that does not scale holds no autoscalesettings role (infra access.py):
    its rollouts neither write nor delete settings."""
    backend = RecordingBackend()
    roll(backend, autoscale=None)
    roll(backend, autoscale=None)
    assert not [call for call in backend.calls if call[0] in ("autoscale", "unscale")]
    assert backend.calls[-1] == ("delete", "blue") and backend.scaled == {}
