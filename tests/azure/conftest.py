"""The azure backend under test: the real azure-ai-ml SDK, only its HTTP transport replaced."""

from __future__ import annotations

import pytest
from azure.core.pipeline.transport import RequestsTransport
from fake_azure import SUBSCRIPTION, FakeAzure, FakeCredential
from helpers import ROOT

from mlops import lifecycle
from mlops.backends.azure.backend import AzureBackend
from mlops.progress import Progress

LINEAGE_TAGS = {
    "data_sha256": "d" * 64,
    "onnx_sha256": "0" * 64,
    "metric.accuracy": "0.97",
    "metric.recall": "0.93",
    "metric.roc_auc": "0.99",
    "param.n_estimators": "100",
}


@pytest.fixture
def fake(monkeypatch):
    azure = FakeAzure(job_tags=dict(LINEAGE_TAGS))
    # Every azure-core client (storage uploads included) goes to the fake, never to the network.
    monkeypatch.setattr(
        RequestsTransport, "send", lambda self, request, **kw: azure.send(request, **kw)
    )
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    for variable in (
        "AZURE_RESOURCE_GROUP",
        "AZURE_ML_WORKSPACE",
        "AZURE_ML_REGISTRY",
        "AZURE_ENDPOINT_IDENTITY_ID",
    ):
        monkeypatch.delenv(variable, raising=False)
    return azure


@pytest.fixture
def ctx(fake, tmp_path):
    context = lifecycle.Context(
        root=ROOT, home=tmp_path / "home", backend_name="azure", progress=Progress()
    )
    for env in ("dev", "preprod", "prod"):
        context._backends[env] = AzureBackend(
            context.config(env),
            ROOT,
            context.home,
            azure_credential=FakeCredential(),
            transport=fake,
            poll_seconds=0,
        )
    return context
