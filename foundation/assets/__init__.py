"""Robot and scene models (MJCF + meshes) shipped with the package, with their licences."""

from __future__ import annotations

import pathlib

ASSET_DIR = pathlib.Path(__file__).parent
"""Folder holding one sub-folder per asset (e.g. ``crazyflie/``)."""


def asset_path(relative: str) -> pathlib.Path:
    """Absolute path of a packaged asset file, e.g. ``asset_path("crazyflie/cf2x.xml")``.

    Raises:
        FileNotFoundError: if the file does not exist, listing the available asset folders.
    """
    path = ASSET_DIR / relative
    if not path.is_file():
        folders = sorted(p.name for p in ASSET_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise FileNotFoundError(f"No asset file '{relative}' in {ASSET_DIR}. Available asset folders: {folders}.")
    return path
