"""Regenerate the decimated visual meshes in foundation/assets/franka_emika_panda/assets/.

This one-off asset builder is not part of the package at run time. It reads the unmodified Menagerie OBJ files in
source/franka_emika_panda/assets/ (33 MB; every triangle carries its own three vertices, for per-face normals) and
writes for each visual mesh an OBJ with shared vertices and at most ``MAX_FACES`` triangles, without normals or
materials (MuJoCo computes normals and keeps sharp edges sharp; colours come from the MJCF materials). Collision
meshes (the ``*.stl`` files and ``link5_collision_*.obj``) are copied unchanged: MuJoCo uses their convex hulls.

Vertex positions are not moved, scaled or rotated, so the meshes stay in metres in their link frames.

Needs ``fast-simplification`` (pip install fast-simplification) and numpy.
Run from anywhere:  python scripts/build_panda_meshes.py
"""

from __future__ import annotations

import pathlib
import shutil

import fast_simplification
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SRC = REPO / "source" / "franka_emika_panda" / "assets"
DST = REPO / "foundation" / "assets" / "franka_emika_panda" / "assets"

#: Triangle budget per visual mesh: enough for the silhouette of a link at video resolution (a link is ~0.1-0.3 m).
MAX_FACES = 1500
#: Vertices closer than this are merged before decimation (the source repeats each vertex per face), metres.
MERGE_TOL_M = 1e-7


def read_obj(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangles (F, 3) of an OBJ file; texture and normal indices are dropped."""
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) - 1 for tok in line.split()[1:]]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def merge_vertices(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices and drop triangles that became degenerate."""
    keys = np.round(verts / MERGE_TOL_M).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return verts[first], faces[ok]


def write_obj(path: pathlib.Path, verts: np.ndarray, faces: np.ndarray, note: str) -> None:
    lines = [f"# {note}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    DST.mkdir(parents=True, exist_ok=True)
    total_in = total_out = 0
    for src in sorted(SRC.iterdir()):
        dst = DST / src.name
        if src.suffix == ".stl" or src.name.startswith("link5_collision_"):
            shutil.copyfile(src, dst)
            continue
        if src.suffix != ".obj":
            continue
        verts, faces = merge_vertices(*read_obj(src))
        n_in = len(faces)
        if n_in > MAX_FACES:
            verts, faces = fast_simplification.simplify(verts, faces, target_reduction=1.0 - MAX_FACES / n_in)
        write_obj(dst, verts, faces, f"{src.name} of Menagerie franka_emika_panda, decimated {n_in} -> {len(faces)} "
                                     "triangles by scripts/build_panda_meshes.py")
        total_in += src.stat().st_size
        total_out += dst.stat().st_size
        print(f"{src.name}: {n_in} -> {len(faces)} triangles")
    print(f"visual OBJ bytes: {total_in} -> {total_out}")


if __name__ == "__main__":
    main()
