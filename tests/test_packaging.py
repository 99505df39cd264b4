"""The explicit package list in pyproject.toml covers every package folder of the repository.

setuptools installs exactly the listed packages (the top-level metrics/, data_prep/ and pipelines/
folders are mapped into the linegraph2road namespace), so a new sub-package that is not listed
works in an editable install but is missing from ``pip install .``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join([name, *init.parent.relative_to(REPO / folder).parts])
        for name, folder in config["package-dir"].items()
        for init in (REPO / folder).rglob("__init__.py")
    }
    missing = found - set(config["packages"])
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
