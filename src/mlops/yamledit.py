"""Line-level YAML edits: only the line holding a key changes; every other line and comment stays.

`mlops init` renders its answers into environment and stack files this way, and the
promotion pull request changes prod's model.version, so a reviewer sees a one-line diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlops.errors import MlopsError

_KEY = re.compile(r"^(\s*)([^\s#:][^\s]*?):(\s|$)")
_COMMENT = re.compile(r"(\s+)#.*$")


def _key_lines(lines: list[str]) -> Iterator[tuple[int, int, str, int]]:
    """(index, indent, dotted path, value start) for every `key:` line."""
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")):
            continue
        match = _KEY.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        yield index, indent, ".".join(key for _, key in stack), match.end(2) + 1


def set_scalar(text: str, dotted: str, shown: str, where: str, comment: str | None = None) -> str:
    """Set the value of `dotted` (e.g. model.version) to the YAML text `shown`.

    A comment on the line is kept, or, when `comment` is given, its text is replaced."""
    lines = text.splitlines(keepends=True)
    for index, _, path, start in _key_lines(lines):
        if path == dotted:
            line = lines[index].rstrip("\n")
            found = _COMMENT.search(line[start:])
            tail = found.group(0) if found else ""
            if found and comment is not None:
                tail = f"{found.group(1)}{comment}"
            lines[index] = f"{line[:start]} {shown}{tail}\n"
            return "".join(lines)
    raise MlopsError(f"{where}: no `{dotted}` to set")


def set_list(text: str, dotted: str, shown_items: list[str], where: str) -> str:
    """Replace the block list under `dotted` with the YAML texts `shown_items`."""
    lines = text.splitlines(keepends=True)
    for index, indent, path, _ in _key_lines(lines):
        if path == dotted:
            end = index + 1
            while end < len(lines) and lines[end].strip().startswith("- "):
                end += 1
            pad = " " * (indent + 2)
            lines[index + 1 : end] = [f"{pad}- {item}\n" for item in shown_items]
            return "".join(lines)
    raise MlopsError(f"{where}: no `{dotted}` list to set")
