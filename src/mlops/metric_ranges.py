"""The values each gated metric can take, as src/model/evaluate.py declares them (METRIC_RANGES).

Read from the file's text, not imported: the settings are checked by every verb, and the
evaluation code imports scikit-learn and matplotlib. A metric the table does not name is
unbounded: a fork's metric is checked once its range is declared.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

from mlops.errors import MlopsError
from mlops.files import read_text
from mlops.paths import MODEL_CODE

EVALUATE = MODEL_CODE / "evaluate.py"
TABLE = "METRIC_RANGES"

Range = tuple[float, float]  # low, high; an infinity where unbounded


def of(root: Path) -> dict[str, Range]:
    """Each declared metric's range; {} when the file declares none."""
    path = root / EVALUATE
    if not path.is_file():
        return {}
    shown = EVALUATE.as_posix()
    try:
        tree = ast.parse(read_text(path, shown), shown)
    except SyntaxError as exc:
        raise MlopsError(f"{shown} line {exc.lineno}: not valid Python") from None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == TABLE and node.value is not None:
            return _checked(node.value, shown)
    return {}


def _checked(value: ast.expr, shown: str) -> dict[str, Range]:
    wrong = MlopsError(
        f"{shown}: {TABLE} must be a literal mapping of metric to [low, high] "
        "(numbers or None, low <= high)"
    )
    try:
        table = ast.literal_eval(value)
    except ValueError:
        raise wrong from None
    if not isinstance(table, dict):
        raise wrong
    ranges = {}
    for metric, bounds in table.items():
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise wrong
        low, high = (
            -math.inf if bounds[0] is None else bounds[0],
            math.inf if bounds[1] is None else bounds[1],
        )
        if not all(type(b) in (int, float) and not math.isnan(b) for b in (low, high)):
            raise wrong
        if low > high:
            raise wrong
        ranges[str(metric)] = (float(low), float(high))
    return ranges


def problem(metric: str, bound: float, ranges: dict[str, Range]) -> str | None:
    """Why bound cannot be a bound of metric (outside the values it takes), or None."""
    if metric not in ranges:
        return None
    low, high = ranges[metric]
    if low <= bound <= high:
        return None
    return (
        f"is {bound:g}, outside the range of {metric} [{low:g}, {high:g}] ({EVALUATE.as_posix()} "
        f"{TABLE}), so it would pass anything or refuse everything"
    )
