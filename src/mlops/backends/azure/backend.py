"""The azure backend: the seam of base.py on an Azure ML workspace and registry.

One class made of one part per Azure ML area: training jobs and their environment (jobs.py),
data asset versions (data.py), model versions and registry sharing (models.py), managed
online endpoints (online.py), collected data (collected.py) and batch endpoints (batch.py).
"""

from __future__ import annotations

from pathlib import Path

from mlops.backends.azure.batch import AzureBatch
from mlops.backends.azure.collected import AzureCollected
from mlops.backends.azure.connection import AzureSettings, check_credential, credential
from mlops.backends.azure.data import AzureData
from mlops.backends.azure.jobs import AzureJobs
from mlops.backends.azure.models import AzureModels
from mlops.backends.azure.online import AzureOnline
from mlops.config import EnvConfig
from mlops.progress import Progress


class AzureBackend(AzureJobs, AzureData, AzureModels, AzureOnline, AzureCollected, AzureBatch):
    def __init__(
        self,
        config: EnvConfig,
        root: Path,
        home: Path,
        *,
        azure_credential=None,
        transport=None,
        settings: AzureSettings | None = None,
        poll_seconds: float = 20.0,
        progress: Progress | None = None,
    ):
        from azure.ai.ml import MLClient

        self.config, self.env, self.root, self.home = config, config.name, root, home
        self.settings = settings or AzureSettings.resolve(config)
        if azure_credential is None:
            azure_credential = credential()
            check_credential(azure_credential)
        self.credential = azure_credential
        self._client_options = {"transport": transport} if transport is not None else {}
        s = self.settings
        self.ml = MLClient(
            azure_credential,
            s.subscription_id,
            s.resource_group,
            s.workspace,
            **self._client_options,
        )
        self._registry_client = None
        self.poll_seconds = poll_seconds
        self.say = (progress or Progress()).say

    @property
    def registry(self):
        from azure.ai.ml import MLClient

        if self._registry_client is None:
            self._registry_client = MLClient(
                self.credential, registry_name=self.settings.registry, **self._client_options
            )
        return self._registry_client
