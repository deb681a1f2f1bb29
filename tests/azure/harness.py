"""What the azure tests share: the lineage a training run tags, and a lifecycle on the fake."""

from __future__ import annotations

from pathlib import Path

from fake_azure import FakeAzure, FakeCredential

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


def azure_context(fake: FakeAzure, root: Path, home: Path) -> lifecycle.Context:
    """The lifecycle as the command line builds it, each environment's backend on the fake."""
    context = lifecycle.Context(root=root, home=home, backend_name="azure", progress=Progress())
    for env in ("dev", "preprod", "prod"):
        context._backends[env] = AzureBackend(
            context.config(env),
            root,
            home,
            azure_credential=FakeCredential(),
            transport=fake,
            poll_seconds=0,
        )
    return context


def release_to_registry(ctx: lifecycle.Context):
    """What release.yml's train job does: train, register that job, share that version."""
    job = lifecycle.train(ctx, "dev")
    registered = lifecycle.register(ctx, "dev", job.id)
    return lifecycle.share(ctx, "dev", registered.ref)
