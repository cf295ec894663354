"""Model files (MJCF and meshes) shipped with the package.

Each robot has its own folder under :data:`ASSET_DIR`, holding its MJCF file,
its meshes and the licence of the third-party material it is built from:

* ``crazyflie/cf2x.xml``: Bitcraze Crazyflie 2.x quadrotor, one free-flying
  body meant to be copied many times into one model (from gym-pybullet-drones,
  MIT licence, see ``crazyflie/LICENSE``).

Use :func:`asset_path` to get the path of a file, e.g.
``asset_path("crazyflie/cf2x.xml")``.
"""

from __future__ import annotations

import pathlib

ASSET_DIR: pathlib.Path = pathlib.Path(__file__).parent
"""Folder of the package's assets; paths given to :func:`asset_path` are relative to it."""

__all__ = ["ASSET_DIR", "asset_path"]


def asset_path(relative: str) -> pathlib.Path:
    """Return the absolute path of an asset file, given relative to :data:`ASSET_DIR`.

    Args:
        relative: path inside the assets folder, with ``/`` separators,
            e.g. ``"crazyflie/cf2x.xml"``.

    Returns:
        The path of the file, which exists.

    Raises:
        FileNotFoundError: if no file exists there; the message names the path
            and lists the asset folders that do exist.
    """
    path = ASSET_DIR / relative
    if not path.is_file():
        folders = sorted(
            p.name for p in ASSET_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        )
        raise FileNotFoundError(
            f"no asset file {relative!r} (looked for {path}); "
            f"asset folders: {', '.join(folders) if folders else '(none)'}"
        )
    return path
