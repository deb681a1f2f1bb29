"""Training data as a versioned data asset: `mlops data register` and `mlops data list`.

The rules are written once here; backends only list, get, create and download versions.
A version is numbered 1, 2, 3 (as Azure ML numbers data versions); the same bytes
registered again reuse their version; a file that breaks the model's input contract
(src/model/features.py) is refused before anything is registered, naming its first bad
row and column; `--base NAME:VERSION` makes the new version the base's rows followed by
the file's (how labelled feedback joins the training data).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from mlops import config as config_module
from mlops import data_diff, lineage
from mlops.backends.base import (
    DATA_PARENT,
    DATA_ROWS,
    DATA_SHA256,
    DATA_SOURCE,
    TAG_DATA,
    TAG_DATA_ASSET,
    TAG_DATA_VERSION,
    DataVersion,
    ModelVersion,
)
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.files import read_text
from mlops.github import set_outputs
from mlops.paths import MODEL_CODE

CACHE = "data-cache"  # under <home>/<env>/: versions downloaded from a workspace


def contract(root: Path) -> ModuleType:
    """src/model/features.py, the data scientist's contract (src/model is no package)."""
    spec = importlib.util.spec_from_file_location(
        "model_features", root / MODEL_CODE / "features.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


# ---- the contract, row by row -----------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A checked CSV: its header, its data lines as text, and its label counts."""

    header: list[str]
    rows: list[list[str]]
    labels: dict[str, int]


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def checked_table(root: Path, path: Path, shown: str) -> Table:
    """The CSV at path, refused in one sentence naming the first row and column that break the
    contract: every feature a finite number, the target one of the classes (or a number)."""
    features = contract(root)
    columns = [*features.FEATURES, features.TARGET]
    classes = features.CLASSES
    text = read_text(path, shown)  # not UTF-8: one sentence naming the line
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        lines = list(reader)
    except csv.Error as exc:
        raise MlopsError(f"{shown}: not a readable CSV file ({exc})") from None
    if not header:
        raise MlopsError(f"{shown}: is empty; a data version needs a header and rows")
    missing = [name for name in columns if name not in header]
    if missing:
        raise MlopsError(f"{shown}: missing column(s) {', '.join(missing)}")
    if not lines:
        raise MlopsError(f"{shown}: has a header but no rows")
    where = {name: header.index(name) for name in columns}
    allowed = {str(c) for c in classes} if classes is not None else None
    labels: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if len(line) != len(header):
            raise MlopsError(
                f"{shown}: row {number} (line {number + 1}) has {len(line)} values, "
                f"the header {len(header)}"
            )
        for name in columns:
            value = line[where[name]].strip()
            if not _finite(value):
                problem = "is empty" if not value else f"{value!r} is not a finite number"
            elif allowed is not None and name == features.TARGET and _label(value) not in allowed:
                problem = f"{value!r} is not one of {', '.join(sorted(allowed))}"
            else:
                continue
            raise MlopsError(f"{shown}: row {number} (line {number + 1}), column {name}: {problem}")
        if allowed is not None:
            label = _label(line[where[features.TARGET]].strip())
            labels[label] = labels.get(label, 0) + 1
    return Table(header, lines, labels)


def _label(text: str) -> str:
    """A class as written in the contract (1.0 is class 1)."""
    number = float(text)
    return str(int(number)) if number.is_integer() else text


def _csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# ---- the verbs ---------------------------------------------------------------------------


def parse_data_ref(text: str) -> tuple[str, int]:
    name, _, version = text.rpartition(":")
    if not name or not version.isdigit() or int(version) < 1:
        raise MlopsError(
            f"expected a data version as NAME:VERSION (e.g. breast-cancer:2), not {text!r}"
        )
    return name, int(version)


def _source(ctx: Context, given: str) -> tuple[Path, str]:
    path = Path(given)
    if not path.exists() and not path.is_absolute() and (ctx.root / given).exists():
        path = ctx.root / given
    if not path.exists():
        raise MlopsError(f"{given}: no such file or folder")
    return path, given


def _files_of(path: Path, shown: str) -> list[Path]:
    """A file, or a folder's CSV files in name order (registered as one table)."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*.csv") if p.is_file())
    if not files:
        raise MlopsError(f"{shown}: the folder holds no .csv file")
    return files


def register(
    ctx: Context, env: str, asset: str, given: str, base: str | None = None
) -> DataVersion:
    """Make the file (or folder) a version of the asset: checked, appended to base if given,
    its bytes reusing the version that already holds them. Refused: nothing registered."""
    try:
        config_module._checked_name(asset)
    except ValueError as problem:
        raise MlopsError(f"data asset name {problem}") from None
    backend = ctx.backend(env)
    path, shown = _source(ctx, given)
    files = _files_of(path, shown)
    tables = [
        (checked_table(ctx.root, file, label), label)
        for file in files
        for label in [shown if file == path else f"{shown}/{file.name}"]
    ]
    with tempfile.TemporaryDirectory(prefix="mlops-data-") as folder:
        parent = _version(backend, env, base) if base is not None else None
        if parent is not None:  # the base's bytes as they are, then the new rows
            base_file = backend.download_data(parent, Path(folder) / "base")
            header = checked_table(ctx.root, base_file, parent.ref).header
            content, appended = base_file.read_bytes(), tables
        elif path.is_file():  # one file: its bytes as they are
            header, content, appended = tables[0][0].header, path.read_bytes(), []
        else:  # a folder: one table, the first file's header
            header, appended = tables[0][0].header, tables
            content = _csv_text(header, []).encode()
        for table, label in appended:
            if not content.endswith(b"\n"):
                content += b"\n"
            content += _csv_text(None, _in_order(table, header, label)).encode()
        made = Path(folder) / f"{asset}.csv"
        made.write_bytes(content)
        rows = len(checked_table(ctx.root, made, shown).rows)
        version = _new_or_same(ctx, backend, asset, made, rows, shown, parent)
    set_outputs(data=version.ref)
    return version


def _version(backend, env: str, ref: str) -> DataVersion:
    name, number = parse_data_ref(ref)
    found = backend.get_data_version(name, number)
    if found is None:
        raise MlopsError(f"data {ref} is not registered in {env}; nothing registered")
    return found


def _in_order(table: Table, header: list[str], shown: str) -> list[list[str]]:
    """The table's rows with its columns in the header's order (refused if one is missing)."""
    missing = [name for name in header if name not in table.header]
    if missing:
        raise MlopsError(f"{shown}: lacks column(s) {', '.join(missing)} of the data it joins")
    order = [table.header.index(name) for name in header]
    return [[row[at] for at in order] for row in table.rows]


def _new_or_same(
    ctx: Context, backend, asset: str, made: Path, rows: int, shown: str, parent
) -> DataVersion:
    """The version holding these bytes, or the next version number made of them."""
    sha256 = lineage.sha256_of(made)
    existing = backend.list_data_versions(asset)
    same = [found for found in existing if found.sha256 == sha256]
    if same:
        version = min(same, key=lambda found: found.version)
        ctx.say(
            f"data {version.ref} already holds these bytes (sha256 {sha256[:12]}…): "
            "not registered again"
        )
        return version
    tags = {
        DATA_SHA256: sha256,
        DATA_ROWS: str(rows),
        DATA_SOURCE: Path(shown).as_posix(),
        DATA_PARENT: parent.ref if parent else "",
    }
    number = max((found.version for found in existing), default=0) + 1
    version = backend.create_data_version(asset, number, made, tags)
    grown = (
        f" ({parent.ref}'s {parent.tags.get(DATA_ROWS, '?')} rows and {shown}'s)"
        if parent
        else f" from {shown}"
    )
    ctx.say(f"registered data {version.ref}: {rows} rows{grown}, sha256 {sha256[:12]}…")
    return version


def list_versions(ctx: Context, env: str, asset: str) -> list[DataVersion]:
    versions = ctx.backend(env).list_data_versions(asset)
    if not versions:
        print(f"data asset {asset} has no version in {env}")
    for found in versions:
        tags = found.tags
        parent = f", from {tags[DATA_PARENT]}" if tags.get(DATA_PARENT) else ""
        print(
            f"{found.ref}  rows {tags.get(DATA_ROWS, '?')}  sha256 {found.sha256[:12]}  "
            f"source {tags.get(DATA_SOURCE, '?')}{parent}"
        )
    return versions


# ---- what train and the readers of lineage need -----------------------------------------


def resolve(ctx: Context, env: str, named: config_module.TrainingData) -> DataVersion:
    """The exact version training.data names; `latest` is resolved here, once, and printed.
    An asset with no version yet gets the committed `initial` file as its version 1."""
    backend = ctx.backend(env)
    versions = backend.list_data_versions(named.asset)
    if not versions and named.initial is not None:
        ctx.say(f"data asset {named.asset} has no version yet: registering {named.initial}")
        versions = [register(ctx, env, named.asset, named.initial)]
    if named.version is not None:
        found = [version for version in versions if version.version == named.version]
        if not found:
            raise MlopsError(
                f"data {named.shown} is not registered in {env}; "
                f"`mlops data list --env {env} --asset {named.asset}` shows its versions"
            )
        return found[0]
    if not versions:
        raise MlopsError(
            f"data asset {named.asset} has no version in {env}; register one: "
            f"mlops data register --env {env} --asset {named.asset} --path FILE"
        )
    newest = max(versions, key=lambda found: found.version)
    ctx.say(
        f"training data: {named.shown} is {newest.ref} ({newest.tags.get(DATA_ROWS, '?')} rows)"
    )
    if named.initial is not None:
        committed = lineage.sha256_of(ctx.root / named.initial)
        if all(found.sha256 != committed for found in versions):
            ctx.say(
                f"notice: {named.initial} differs from every version of {named.asset}; "
                f"to train on it: mlops data register --env {env} --asset {named.asset} "
                f"--path {named.initial}"
            )
    return newest


def local_file(ctx: Context, data: DataVersion, env: str = config_module.TRAINING_ENV) -> Path:
    """The version's file on this machine, checked by its sha256 (downloaded once on Azure)."""
    return ctx.backend(env).download_data(data, ctx.home / env / CACHE)


def share_training_data(ctx: Context, env: str, model: ModelVersion) -> DataVersion | None:
    """Share the data version the model was trained on into the registry, same bytes, before the
    model itself: the gate (preprod's job) and the monitor (prod's) read it there with the read
    their registry role gives, never from env's workspace. None for a model older than data
    assets. A version the registry holds with other bytes is refused, as a model's is."""
    tags = model.tags
    asset, version = tags.get(TAG_DATA_ASSET), tags.get(TAG_DATA_VERSION, "")
    if not asset:
        return None
    if not version.isdigit():
        raise MlopsError(f"{model.ref} names data {asset}:{version!r}, no version number")
    backend = ctx.backend(env)
    source = backend.get_data_version(asset, int(version))
    if source is None:
        raise MlopsError(f"{model.ref} was trained on data {asset}:{version}, not in {env}")
    if source.sha256 != tags.get(TAG_DATA):
        raise MlopsError(f"{model.ref}'s data_sha256 differs from data {source.ref}'s in {env}")
    shared = backend.get_shared_data(asset, int(version))
    if shared is None:
        shared, verb = backend.share_data(source), "shared"
    elif shared.sha256 != source.sha256:
        raise MlopsError(
            f"the registry already holds data {shared.ref} with other bytes "
            f"(sha256 {shared.sha256[:12]}…); refusing to overwrite it"
        )
    else:
        verb = "already in the registry:"
    ctx.say(f"{verb} data {shared.ref} (sha256 {shared.sha256[:12]}…)")
    return shared


def training_data_of(
    ctx: Context, served: str, model: ModelVersion | None, env: str = config_module.TRAINING_ENV
) -> Path:
    """The data a model was trained on, by its lineage: a committed `initial` file with the
    model's data_sha256 (read from the checkout, no workspace needed), else the data asset
    version it names (read by env's identity: from the training workspace in the training
    environment, from the registry, where `share` put it beside the model, elsewhere), else
    (models older than data assets) none."""
    tags = model.tags if model is not None else {}
    wanted = tags.get(TAG_DATA)
    asset = tags.get(TAG_DATA_ASSET)
    # the data asset version the tags name must hold the bytes data_sha256 names, even when a
    # committed file with those bytes saves the download: a wrong tag is refused, never skipped
    named_version = _tagged_data_version(ctx, served, asset, tags, env) if asset else None
    if named_version is not None and named_version.sha256 != wanted:
        raise MlopsError(
            f"the training data of {served} is not data {named_version.ref}, which its "
            f"{TAG_DATA_VERSION} tag names (its {TAG_DATA} differs from that version's sha256)"
        )
    named = []
    for each in config_module.ENVIRONMENTS:
        data = ctx.config(each).training_data
        if data is None or data.initial is None:
            continue
        committed = ctx.root / data.initial
        if wanted and lineage.sha256_of(committed) == wanted:
            return committed
        named.append(data.initial)
    if named_version is not None:
        return local_file(ctx, named_version, env)
    raise MlopsError(
        f"the training data of {served} is not {' nor '.join(named) or 'known'} "
        "(its data_sha256 differs)"
    )


def _tagged_data_version(ctx: Context, served: str, asset: str, tags: dict, env: str):
    """The data asset version a model's tags name, read by env's identity (the training
    workspace in the training environment, the registry elsewhere); refused if missing."""
    version = tags.get(TAG_DATA_VERSION, "")
    if not (version.isascii() and version.isdigit() and int(version) > 0):
        raise MlopsError(
            f"{served}'s {TAG_DATA_VERSION} tag is {version!r}, not a version number of data "
            f"{asset}"
        )
    backend = ctx.backend(env)
    if env == config_module.TRAINING_ENV:
        found = backend.get_data_version(asset, int(version))
        if found is None:
            raise MlopsError(
                f"{env}'s workspace holds no data {asset}:{version}, which {served}'s tags name"
            )
        return found
    found = backend.get_shared_data(asset, int(version))
    if found is None:
        raise MlopsError(
            f"the training data of {served}, data {asset}:{version}, is not in the registry; "
            f"sharing the model again shares it: mlops share --env "
            f"{config_module.TRAINING_ENV} --model {served}"
        )
    return found


def comparison(
    ctx: Context,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    env: str = config_module.TRAINING_ENV,
) -> data_diff.Comparison:
    """The two models' training data, side by side, for the promotion pull request: compared
    when both files can be read (by env's identity), else each side says why not."""
    ours = _side(ctx, challenger, env)
    theirs = _side(ctx, champion, env) if champion else None
    diff = None
    if ours.file is not None and theirs is not None and theirs.file is not None:
        features = contract(ctx.root)
        diff = data_diff.compare(ours.file, theirs.file, list(features.FEATURES), features.TARGET)
    return data_diff.Comparison(ours, theirs, diff)


def _side(ctx: Context, model: ModelVersion, env: str) -> data_diff.Side:
    tags = model.tags
    if tags.get(TAG_DATA_ASSET):
        name = f"{tags[TAG_DATA_ASSET]}:{tags.get(TAG_DATA_VERSION, '?')}"
    else:
        name = f"sha256 {tags.get(TAG_DATA, 'unknown')[:12]}… (no data version recorded)"
    try:
        return data_diff.Side(name, training_data_of(ctx, model.ref, model, env))
    except MlopsError as exc:
        return data_diff.Side(name, None, str(exc))
