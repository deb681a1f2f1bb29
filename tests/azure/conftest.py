"""The azure backend under test: the real azure-ai-ml SDK, only its HTTP transport replaced."""

from __future__ import annotations

import pytest
from azure.core.pipeline.transport import RequestsTransport
from fake_azure import SUBSCRIPTION, FakeAzure
from harness import StepRunner, azure_context
from helpers import ROOT


@pytest.fixture(scope="session")
def runner(session_folder):
    """Real runs of the pipeline's steps, one per reuse key, shared by every azure test of the
    session, in every worker."""
    return StepRunner(session_folder / "azure-runs")


@pytest.fixture
def fake(monkeypatch, runner):
    azure = FakeAzure(runner=runner)
    # Every azure-core client (storage uploads included) goes to the fake, never to the network.
    monkeypatch.setattr(
        RequestsTransport, "send", lambda self, request, **kw: azure.send(request, **kw)
    )
    # Pollers wait through their client's transport (azure-core LROBasePolling._sleep), and some
    # azure-ai-ml clients (the registry's model import) build a RequestsTransport of their own.
    # The double answers Retry-After: 0, which azure-core reads as "no header" and so sleeps the
    # client's polling_interval, 30 s by default (base_polling._extract_delay: `if delay:`;
    # azure/ai/ml/_restclient/*/_configuration.py): the double records the wait instead.
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, duration: azure.sleep(duration))
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
    return azure_context(fake, ROOT, tmp_path / "home")
