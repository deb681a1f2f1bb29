"""Files a user hands the CLI, read strictly and written only where a file belongs.

One reader for every YAML file the CLI reads (environments/*.yml, project.yml, the
component specs, infra's Pulumi.yaml): text that is not UTF-8 is refused naming the
line, and a key written twice in one mapping is refused naming both lines, since YAML
would keep the last one silently and a reviewer reading the diff sees the first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from mlops.errors import MlopsError

MERGE_KEY = "tag:yaml.org,2002:merge"  # `<<:` may repeat by design (YAML 1.1 merge)


def read_text(path: Path, shown: str | None = None) -> str:
    """The file's text as UTF-8, or one sentence naming the file and the first bad line."""
    shown = shown or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MlopsError(f"{shown}: file not found") from None
    except OSError as exc:
        raise MlopsError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    return decoded(data, shown)


def decoded(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MlopsError(
            f"{shown} line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; "
            "save the file as UTF-8 text"
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding one key twice."""

    shown = "the file"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_KEY:
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    earlier = first.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own refusal says so
                    continue
                first[key] = line
                if earlier is not None:
                    raise MlopsError(
                        f"{self.shown}: key {key!r} is written twice in one mapping (line "
                        f"{earlier} and line {line}); YAML would keep only the last, so "
                        "keep one"
                    )
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, shown: str) -> Any:
    """YAML text as Python values, refusing repeated keys; bad YAML is one sentence."""
    loader = _UniqueKeyLoader(text)
    loader.shown = shown
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MlopsError(f"{shown}: not valid YAML{where}") from None
    finally:
        loader.dispose()


def load_yaml(path: Path, shown: str | None = None) -> Any:
    shown = shown or str(path)
    return load_yaml_text(read_text(path, shown), shown)


def checked_output(path: Path, flag: str = "--out") -> Path:
    """A path a verb may write a file to: a regular file (replaced whole) or a new path.

    A device, a folder, a pipe or a symbolic link is refused before any work starts: the
    file is written by rename, which would put a regular file in the place of any of them."""
    try:
        found = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise MlopsError(f"{flag} {path}: {parent} is not a folder") from None
        return path
    except OSError as exc:
        raise MlopsError(f"{flag} {path}: cannot be checked ({exc.strerror or exc})") from None
    if stat.S_ISLNK(found.st_mode):
        raise MlopsError(f"{flag} {path} is a symbolic link; name the file itself")
    if stat.S_ISDIR(found.st_mode):
        raise MlopsError(f"{flag} {path} is a folder; name the file to write")
    if not stat.S_ISREG(found.st_mode):
        raise MlopsError(
            f"{flag} {path} is not a regular file (a device, pipe or socket); "
            "name a regular file or a new path"
        )
    return path
