"""The job and serving environment: exact pins that resolve together, MLflow's Azure ML plugin in."""

import importlib.metadata
import re

import yaml
from helpers import MODEL_DIR
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CONDA = MODEL_DIR / "environment" / "conda.yml"
# Where the pins are judged: the Linux image of an Azure ML job, on the pinned Python.
TARGET = {"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}


def conda_pins() -> tuple[str, dict[str, str]]:
    dependencies = yaml.safe_load(CONDA.read_text())["dependencies"]
    (python,) = [d for d in dependencies if isinstance(d, str) and d.startswith("python=")]
    (pip,) = [d["pip"] for d in dependencies if isinstance(d, dict)]
    pins = {}
    for line in pip:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{line}: pin an exact version"
        pins[canonicalize_name(requirement.name)] = spec.version
    return python.removeprefix("python="), pins


def test_python_and_every_pip_package_are_pinned_exactly():
    python, pins = conda_pins()
    assert re.fullmatch(r"3\.11\.\d+", python)
    assert {"mlflow", "azureml-mlflow", "azureml-inference-server-http"} <= set(pins)


def test_the_pins_satisfy_each_others_requirements():
    """Checked offline from the metadata of the installed packages (the dev extra has them)."""
    _, pins = conda_pins()
    judged, implied = {}, dict(pins)
    for name, version in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if installed != version:
            continue
        judged[name] = [
            r
            for r in map(Requirement, importlib.metadata.requires(name) or [])
            if r.marker is None or r.marker.evaluate({**TARGET, "extra": ""})
        ]
        for requirement in judged[name]:  # e.g. mlflow==3.15.0 needs mlflow-skinny==3.15.0
            exact = [s.version for s in requirement.specifier if s.operator == "=="]
            if exact:
                implied.setdefault(canonicalize_name(requirement.name), exact[0])
    assert {"mlflow", "azureml-mlflow"} <= set(judged), (
        "install the pinned mlflow and azureml-mlflow (make install) to check the pins"
    )
    broken = [
        f"{name}=={pins[name]} needs {requirement}, pinned {implied[other]}"
        for name, requirements in judged.items()
        for requirement in requirements
        if (other := canonicalize_name(requirement.name)) in implied
        and not requirement.specifier.contains(implied[other], prereleases=True)
    ]
    assert not broken
    # azureml-mlflow bounds mlflow through mlflow-skinny: the check above must have seen it
    assert "mlflow-skinny" in {canonicalize_name(r.name) for r in judged["azureml-mlflow"]}


def test_the_azureml_plugin_gives_mlflow_the_azureml_scheme():
    """Inside a job MLFLOW_TRACKING_URI is azureml://…; mlflow finds a store for it only here."""
    stores = importlib.metadata.entry_points(group="mlflow.tracking_store")
    (azureml,) = [e for e in stores if e.name == "azureml"]
    assert azureml.dist.name.replace("_", "-") == "azureml-mlflow"
