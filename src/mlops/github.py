"""Step outputs for GitHub Actions: what one step hands to the next."""

from __future__ import annotations

import os


def set_outputs(**values: str) -> None:
    """Append key=value lines to $GITHUB_OUTPUT when running in Actions; do nothing elsewhere."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a") as handle:
        for key, value in values.items():
            if "\n" in value:
                raise ValueError(f"step output {key} must be one line")
            handle.write(f"{key.replace('_', '-')}={value}\n")
