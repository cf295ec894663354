"""Regenerate the decimated meshes in foundation/assets/crazyflie/meshes/.

This one-off asset builder is not part of the package at run time. It reads the
unmodified third-party OBJ files in source/gym_pybullet_drones_cf2x/ and writes smaller OBJ files
that keep the visual shape and are cheap to copy thousands of times in one
MjModel:

* body.obj (6,266 triangles, 600 KB) is split by texture colour. The texture
  body.png is an 8x1 palette, and every face picks one palette entry through
  its ``vt``. Each colour group is decimated on its own, then written back into
  one OBJ with one ``vt`` per palette entry, so body.png still colours it.
  The gold group is the 20 header pins (about 146 triangles each, which the
  decimator cannot reduce); each pin becomes its axis-aligned bounding box.
* propeller{0..3}.obj (792 triangles each) are decimated and written without
  normals.

Vertex positions are not moved, scaled or rotated: the OBJ files are in
metres, in the body frame of cf2x.urdf (x forward, z up).

Needs ``fast-simplification`` (pip install fast-simplification) and numpy.
Run from anywhere:  python scripts/build_crazyflie_meshes.py
"""

from __future__ import annotations

import pathlib
import shutil

import fast_simplification
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SRC = REPO / "source" / "gym_pybullet_drones_cf2x"
DST = REPO / "foundation" / "assets" / "crazyflie" / "meshes"

PALETTE_WIDTH = 8  # body.png is 8x1 pixels
# Fraction of triangles to remove per body colour group (palette index):
# 0 white, 1 near-black, 2 light grey (motor mounts; the decimator leaves them
# as they are), 3 blue-grey, 4 gold (header pins, see BOXED_GROUPS), 5 dark green.
BODY_REDUCTION = {0: 0.5, 1: 0.5, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}
# Groups whose connected parts are each replaced by their bounding box.
BOXED_GROUPS = {4}
# Triangles of a box with corners lo/hi, indexed into BOX_CORNERS, wound outwards.
BOX_CORNERS = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)])
BOX_TRIS = np.array(
    [
        [0, 2, 1], [1, 2, 3],  # z = lo
        [4, 5, 6], [5, 7, 6],  # z = hi
        [0, 1, 4], [1, 5, 4],  # y = lo
        [2, 6, 3], [3, 6, 7],  # y = hi
        [0, 4, 2], [2, 4, 6],  # x = lo
        [1, 3, 5], [3, 7, 5],  # x = hi
    ]
)
PROPELLER_REDUCTION = 0.8


def read_obj(path: pathlib.Path):
    verts, texcoords, faces = [], [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            texcoords.append([float(x) for x in parts[1:3]])
        elif parts[0] == "f":
            corners = [token.split("/") for token in parts[1:]]
            if len(corners) != 3:
                raise ValueError(f"{path}: only triangles are handled")
            faces.append(
                [
                    (int(c[0]) - 1, int(c[1]) - 1 if len(c) > 1 and c[1] else -1)
                    for c in corners
                ]
            )
    faces = np.array(faces, dtype=np.int64)  # (F, 3, 2): vertex, texcoord
    return np.array(verts), np.array(texcoords), faces


def decimate(verts: np.ndarray, tris: np.ndarray, reduction: float):
    """Weld coincident vertices used by tris, drop degenerate triangles, then decimate.

    The source OBJ repeats a vertex wherever its texture coordinate differs; left
    unwelded, those seams tear open when decimated. With reduction 0 the part is
    only compacted, not welded, so that its shading stays as in the source.
    """
    if reduction <= 0.0:
        used, inverse = np.unique(tris, return_inverse=True)
        return verts[used], inverse.reshape(tris.shape)
    points, tris = weld(verts, tris)
    keep = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
    tris = tris[keep]
    points, tris = fast_simplification.simplify(
        points.astype(np.float64), tris.astype(np.int64), target_reduction=reduction
    )
    return np.asarray(points), np.asarray(tris)


def weld(verts: np.ndarray, tris: np.ndarray):
    """Merge coincident vertices of tris; return (points, tris) indexing points."""
    points, inverse = np.unique(np.round(verts[tris.ravel()], 7), axis=0, return_inverse=True)
    return points, inverse.reshape(tris.shape)


def bounding_boxes(verts: np.ndarray, tris: np.ndarray):
    """Replace each connected part of the mesh by its axis-aligned bounding box."""
    points, tris = weld(verts, tris)
    parent = np.arange(len(points))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, c in tris:
        for u, v in ((a, b), (b, c)):
            ru, rv = root(u), root(v)
            if ru != rv:
                parent[ru] = rv
    roots = np.array([root(i) for i in range(len(points))])
    out_points, out_tris = [], []
    for r in np.unique(roots):
        part = points[roots == r]
        lo, hi = part.min(axis=0), part.max(axis=0)
        out_tris.append(BOX_TRIS + 8 * len(out_points))
        out_points.append(lo + BOX_CORNERS * (hi - lo))
    return np.concatenate(out_points), np.concatenate(out_tris)


def fmt(x: float) -> str:
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def write_obj(path: pathlib.Path, header: str, groups, palette_uv=None) -> None:
    """groups: list of (points, tris, palette_index or None)."""
    lines = [f"# {line}" for line in header.splitlines()]
    if palette_uv is not None:
        lines += [f"vt {fmt(u)} 0.5" for u in palette_uv]
    offset = 0
    for points, tris, colour in groups:
        lines += ["v " + " ".join(fmt(c) for c in p) for p in points]
        for tri in tris + offset + 1:
            if colour is None:
                lines.append("f " + " ".join(str(i) for i in tri))
            else:
                lines.append("f " + " ".join(f"{i}/{colour + 1}" for i in tri))
        offset += len(points)
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    DST.mkdir(parents=True, exist_ok=True)
    note = (
        "Decimated from {name} of gym-pybullet-drones' Crazyflie 2.x model\n"
        "(MIT licence, see ../LICENSE) by scripts/build_crazyflie_meshes.py.\n"
        "Units: metres, cf2x body frame (x forward, z up)."
    )

    verts, texcoords, faces = read_obj(SRC / "body.obj")
    colour = np.floor(texcoords[faces[:, :, 1], 0] * PALETTE_WIDTH).astype(int)
    if np.any(colour.min(axis=1) != colour.max(axis=1)):
        raise ValueError("a body face mixes palette colours")
    colour = colour[:, 0]
    groups = []
    for c in sorted(np.unique(colour)):
        if int(c) in BOXED_GROUPS:
            points, tris = bounding_boxes(verts, faces[colour == c, :, 0])
        else:
            points, tris = decimate(verts, faces[colour == c, :, 0], BODY_REDUCTION[int(c)])
        groups.append((points, tris, int(c)))
    palette_uv = [(i + 0.5) / PALETTE_WIDTH for i in range(PALETTE_WIDTH)]
    write_obj(DST / "cf2x_body.obj", note.format(name="body.obj"), groups, palette_uv)
    shutil.copyfile(SRC / "body.png", DST / "cf2x_palette.png")

    for i in range(4):
        verts, _, faces = read_obj(SRC / f"propeller{i}.obj")
        points, tris = decimate(verts, faces[:, :, 0], PROPELLER_REDUCTION)
        write_obj(
            DST / f"cf2x_propeller{i}.obj",
            note.format(name=f"propeller{i}.obj"),
            [(points, tris, None)],
        )

    for path in sorted(DST.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
