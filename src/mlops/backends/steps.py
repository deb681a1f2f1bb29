"""The training pipeline, declared once for both backends: prep → train → evaluate.

Each step is a component defined in src/model/components/<step>.yml (its command, inputs
with their defaults, outputs); this module says how the steps are wired and which of
`training.params` each one takes. The azure backend submits the components as a pipeline
job; the local backend runs their commands in order, one process each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.errors import MlopsError
from mlops.files import load_yaml

COMPONENTS = "components"  # the folder of component files in the model code
DATA_INPUT = ("prep", "data")  # the raw training data enters here
# step -> {input: (earlier step, its output)}, in the order the steps run
WIRING: dict[str, dict[str, tuple[str, str]]] = {
    "prep": {},
    "train": {"prepared": ("prep", "prepared")},
    "evaluate": {"prepared": ("prep", "prepared"), "model": ("train", "model")},
}
# holds model/ (the MLflow model with model.onnx, and the model card the evaluate step wrote)
MODEL_OUTPUT = ("evaluate", "released")
RECORD_OUTPUT = ("evaluate", "evaluation")  # holds evaluation.json and the charts
RECORD_FILE = "evaluation.json"
RECORD_STEP = RECORD_OUTPUT[0]  # the step whose MLflow run carries the lineage tags
# The pipeline job's own outputs: register reads azureml://jobs/<job>/outputs/model
PIPELINE_OUTPUTS = {"model": MODEL_OUTPUT, "evaluation": RECORD_OUTPUT}


@dataclass(frozen=True)
class Component:
    name: str
    path: Path  # the component file
    command: str
    inputs: dict[str, dict]  # name -> its declaration (type, default, ...)
    outputs: tuple[str, ...]

    def parameters(self) -> list[str]:
        """The inputs that are values, not data: what training.params may set."""
        wired = set(WIRING[self.name]) | ({DATA_INPUT[1]} if self.name == DATA_INPUT[0] else set())
        return [name for name in self.inputs if name not in wired]


def load(code_dir: Path) -> dict[str, Component]:
    """Each step's component file, in WIRING's order; refused in one sentence when one is
    missing or does not declare what the wiring needs."""
    found = {}
    for step, wired in WIRING.items():
        path = Path(code_dir) / COMPONENTS / f"{step}.yml"
        spec = load_yaml(path)
        if not isinstance(spec, dict):
            raise MlopsError(f"{path}: the {step} component must be a mapping of settings")
        component = Component(
            step,
            path,
            str(spec.get("command", "")),
            dict(spec.get("inputs") or {}),
            tuple(spec.get("outputs") or ()),
        )
        needed = set(wired) | ({DATA_INPUT[1]} if step == DATA_INPUT[0] else set())
        missing = sorted(needed - set(component.inputs))
        if missing:
            raise MlopsError(f"{path}: the {step} component declares no input {missing[0]!r}")
        found[step] = component
    for step, output in (MODEL_OUTPUT, RECORD_OUTPUT, *_wired_outputs()):
        if output not in found[step].outputs:
            raise MlopsError(f"{found[step].path}: the {step} component has no output {output!r}")
    return found


def _wired_outputs() -> list[tuple[str, str]]:
    return [source for wired in WIRING.values() for source in wired.values()]


def parameters(components: dict[str, Component], params: dict[str, object]) -> dict[str, dict]:
    """training.params handed to each step that declares an input of that name (e.g. seed to
    all three); a parameter no step takes is refused, never silently dropped."""
    taken = {step: {} for step in components}
    for name, value in params.items():
        takers = [step for step, c in components.items() if name in c.parameters()]
        if not takers:
            offered = sorted({p for c in components.values() for p in c.parameters()})
            raise MlopsError(
                f"training.params.{name} is an input of no pipeline step "
                f"(src/model/{COMPONENTS}/*.yml take: {', '.join(offered)})"
            )
        for step in takers:
            taken[step][name] = value
    return taken
