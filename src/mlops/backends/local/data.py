"""Data asset versions on this machine: <env>/data/<asset>/<version>/ holding the file and
meta.json (its tags), and registry/data/<asset>/<version>/ for those shared into the registry
with their model; a version appears whole or not at all and is never changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops import clock, lineage
from mlops.backends.base import DataVersion
from mlops.backends.local.meta import read_meta
from mlops.backends.local.state_files import DataMeta
from mlops.errors import MlopsError
from mlops.state import write_json

META = "meta.json"


class LocalData:
    """The data asset part of LocalBackend (which provides dir and env)."""

    def _data_folder(self, name: str, shared: bool = False) -> Path:
        return (self.registry if shared else self.dir) / "data" / name

    def list_data_versions(self, name: str) -> list[DataVersion]:
        folder = self._data_folder(name)
        numbers = sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit())
        found = (self.get_data_version(name, number) for number in numbers)
        return [version for version in found if version is not None]

    def get_data_version(self, name: str, version: int, shared: bool = False) -> DataVersion | None:
        folder = self._data_folder(name, shared) / str(version)
        meta = read_meta(folder / META, DataMeta)
        if meta is None:
            return None
        if Path(meta.file).name != meta.file:
            raise MlopsError(f"{folder / META}: field `file` must name a file of its own folder")
        return DataVersion(name, version, dict(meta.tags), str(folder / meta.file))

    def create_data_version(
        self, name: str, version: int, path: Path, tags: dict[str, str], shared: bool = False
    ) -> DataVersion:
        target = self._data_folder(name, shared) / str(version)
        if target.exists():  # versions are immutable, as Azure's are
            where = "the registry" if shared else self.env
            raise MlopsError(f"data {name}:{version} already exists in {where}")
        staging = target.with_name(f".{target.name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copyfile(path, staging / path.name)
        created = clock.now().isoformat(timespec="seconds")
        write_json(staging / META, {"file": path.name, "tags": tags, "created": created})
        staging.rename(target)  # the version appears whole or not at all
        return self.get_data_version(name, version, shared)

    def share_data(self, data: DataVersion) -> DataVersion:
        # the registry keeps its own copy, as an Azure ML registry does
        source = self.download_data(data, self.dir)
        return self.create_data_version(data.name, data.version, source, data.tags, shared=True)

    def get_shared_data(self, name: str, version: int) -> DataVersion | None:
        return self.get_data_version(name, version, shared=True)

    def download_data(self, data: DataVersion, folder: Path) -> Path:
        # the registry's file is already on this machine: checked, not copied
        path = Path(data.location)
        if not path.is_file() or lineage.sha256_of(path) != data.sha256:
            raise MlopsError(f"data {data.ref} in {self.env}: its file does not match its sha256")
        return path
