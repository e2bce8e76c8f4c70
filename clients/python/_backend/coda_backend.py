"""A tiny in-tree PEP 517 build backend, so `pip install ./clients/python` works offline.

A standard isolated build first downloads its backend (setuptools, hatchling, ...) from PyPI;
this one is part of the source tree (`backend-path`) and needs nothing but the standard
library. It builds a pure-Python wheel of the `coda_memory` package and an sdist of the tree.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import ast
import re
import tarfile
import zipfile
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project() -> Dict[str, Any]:
    """The `[project]` table of pyproject.toml."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        text = f.read()
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return _simple_project_table(text.decode("utf-8"))
    project: Dict[str, Any] = tomllib.loads(text.decode("utf-8"))["project"]
    return project


def _simple_project_table(text: str) -> Dict[str, Any]:
    """Before Python 3.11 (no tomllib): `key = "string"` and `key = ["list", ...]` lines of
    `[project]`, which is all this pyproject.toml uses there."""
    project: Dict[str, Any] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[] ")
            continue
        match = re.fullmatch(r'([A-Za-z0-9_-]+)\s*=\s*(".*"|\[.*\])', line)
        if section == "project" and match:
            project[match.group(1)] = ast.literal_eval(match.group(2))
    return project


def _dist_name(project: Dict[str, Any]) -> str:
    return str(project["name"]).replace("-", "_")


def _metadata(project: Dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3.8')}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    lines += [f"License: {project['license']['text']}"] if "license" in project else []
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _package_files() -> List[Tuple[str, str]]:
    """(path in the archive, path on disk) of every file of the package."""
    files = []
    base = os.path.join(ROOT, "coda_memory")
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if os.path.isfile(path) and (name.endswith(".py") or name == "py.typed"):
            files.append((f"coda_memory/{name}", path))
    return files


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_dist_info(dist_info: str, project: Dict[str, Any]) -> Dict[str, bytes]:
    return {
        f"{dist_info}/METADATA": _metadata(project).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: coda_backend\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ).encode(),
    }


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Nothing beyond the standard library."""
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """Nothing beyond the standard library."""
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict[str, Any]] = None) -> str:
    """Writes the `.dist-info` directory pip reads before building."""
    project = _project()
    dist_info = f"{_dist_name(project)}-{project['version']}.dist-info"
    for name, data in _write_dist_info(dist_info, project).items():
        path = os.path.join(metadata_directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return dist_info


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    """Builds `coda_memory-VERSION-py3-none-any.whl` into `wheel_directory`."""
    project = _project()
    name = _dist_name(project)
    dist_info = f"{name}-{project['version']}.dist-info"
    wheel_name = f"{name}-{project['version']}-py3-none-any.whl"
    entries: Dict[str, bytes] = {}
    for arcname, path in _package_files():
        with open(path, "rb") as f:
            entries[arcname] = f.read()
    entries.update(_write_dist_info(dist_info, project))
    record = [_record_line(n, d) for n, d in entries.items()] + [f"{dist_info}/RECORD,,"]
    entries[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for arcname, data in entries.items():
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return wheel_name


def build_sdist(sdist_directory: str,
                config_settings: Optional[Dict[str, Any]] = None) -> str:
    """Builds `coda_memory-VERSION.tar.gz`: the package, the backend, tests and pyproject."""
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    sdist_name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, sdist_name), "w:gz") as tar:
        for top in ("pyproject.toml", "README.md", "coda_memory", "_backend", "tests"):
            path = os.path.join(ROOT, top)
            if os.path.exists(path):
                tar.add(path, arcname=f"{base}/{top}",
                        filter=lambda t: None if "__pycache__" in t.name else t)
        pkg_info = _metadata(project).encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        tar.addfile(info, io.BytesIO(pkg_info))
    return sdist_name
