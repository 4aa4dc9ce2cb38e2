"""Every third-party package the pipeline code imports is declared in pyproject.toml.

The import names are read from the source (ast, top-level and function-level imports alike) and mapped to
their distributions with the installed metadata (`packages_distributions`), so `yaml` counts as PyYAML and
`yt_dlp_ejs` as yt-dlp-ejs without a hand-kept list going stale.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = ("flows", "tasks", "models", "storage")
# Optional packages the code imports only when present (ImportError handled) and that `make test` does not
# install, so there is no metadata to map them: import name -> the distribution an extra must declare.
OPTIONAL_NOT_INSTALLED = {"faiss": "faiss-cpu"}


def imported_names(package: Path) -> dict[str, str]:
    """Top-level import names used under `package` -> one file that imports it (for the message)."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def declared_distributions() -> set[str]:
    """Normalised names of every requirement in pyproject (main and optional groups)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    return {_normalise(re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]) for req in requirements}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_imported_names_are_read_from_source() -> None:
    names = imported_names(REPO / "flows")
    assert "typer" in names and "prefect" in names  # the reader sees both import forms


def test_every_imported_package_is_declared() -> None:
    dists = packages_distributions()
    declared = declared_distributions()
    undeclared = []
    for package in OURS:
        for name, where in sorted(imported_names(REPO / package).items()):
            if name in sys.stdlib_module_names or name in OURS or name == "__future__":
                continue
            owners = {_normalise(d) for d in dists.get(name, [])}
            if not owners and name in OPTIONAL_NOT_INSTALLED:
                owners = {_normalise(OPTIONAL_NOT_INSTALLED[name])}
            if not owners:
                undeclared.append(f"{name} ({where}): not installed, so no distribution to declare")
            elif not owners & declared:
                undeclared.append(f"{name} ({where}): declare one of {sorted(owners)} in pyproject.toml")
    assert not undeclared, "\n".join(undeclared)
