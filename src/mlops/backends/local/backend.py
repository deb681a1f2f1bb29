"""The local backend: the lifecycle on one machine, on the parts Azure ML itself uses.

One class made of one part per Azure ML area: training jobs (jobs.py), data asset versions
(data.py), model versions and the shared registry (models.py), online endpoints (online.py),
collected data (collected.py) and batch endpoints (batch.py).

State lives under MLOPS_HOME (default .mlops/):
    <env>/mlflow.db, <env>/artifacts/   MLflow tracking store and model registry
    <env>/jobs/<job>/                   training job: each step's outputs and log
    <env>/data/<asset>/<version>/       data asset versions: the file and meta.json
    <env>/steps/<key>/                  the step cache: outputs by the hash of their inputs
    <env>/endpoints/<name>/             endpoint.json, router log, deployments/<name>/
    <env>/batch/<name>/                 batch endpoint state, deployments and job outputs
    registry/<model>/<version>/         the shared registry: model files and meta.json
"""

from __future__ import annotations

from pathlib import Path

from mlops.backends.local.batch import LocalBatch
from mlops.backends.local.collected import LocalCollected
from mlops.backends.local.data import LocalData
from mlops.backends.local.jobs import LocalJobs
from mlops.backends.local.models import LocalModels
from mlops.backends.local.online import LocalOnline
from mlops.config import EnvConfig
from mlops.progress import Progress
from mlops.state import private_dir


class LocalBackend(LocalJobs, LocalData, LocalModels, LocalOnline, LocalCollected, LocalBatch):
    def __init__(self, config: EnvConfig, root: Path, home: Path, progress: Progress | None = None):
        self.config = config
        self.env = config.name
        self.root = root
        self.home = home
        self.dir = home / config.name
        private_dir(home)  # 0700 if made here: no other local user reads what is under it
        private_dir(self.dir, own=True)
        self.registry = home / "registry"
        self.say = (progress or Progress()).say
