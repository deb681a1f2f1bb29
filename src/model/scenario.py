"""The demo's drift scenario: what clients send after the world changed.

Here a new scanner measures cell nuclei larger: every size feature (radius,
perimeter, area) reads 40% higher. `mlops demo` sends these rows to prod and
the monitor should notice. Extension point: a fork with other data writes its
own shift here; the lifecycle only sends what this returns.
"""

from __future__ import annotations

import csv
from pathlib import Path

SIZE_MEASURES = ("radius", "area", "perimeter")


def shifted_rows(data: str | Path, scale: float = 1.4) -> list[dict[str, float]]:
    """The training table's rows with their size features scaled up, every column a float."""
    with open(data, newline="") as handle:
        return [
            {
                column: float(value) * (scale if _is_size(column) else 1)
                for column, value in row.items()
            }
            for row in csv.DictReader(handle)
        ]


def _is_size(column: str) -> bool:
    return any(measure in column for measure in SIZE_MEASURES)
