"""Lay out the enclosure from enclosure.toml, render it with OpenSCAD, check the result.

The checks run on the rendered mesh, not on the numbers that produced it: every board
volume (grown by the clearance, except on the face it is mounted by) must be free of
plastic, and rays from the radar's antenna across its beam must leave without touching
the enclosure.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCAD = HERE / "enclosure.scad"
PARAMS = HERE / "enclosure.toml"
LID_LIP = 3.0  # the lid's locating lip reaches this far into the box
RADAR_BOSS = 3.0


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    z: float
    dx: float
    dy: float
    dz: float
    mount_face: str  # the face that touches its mounting features: "-z" or "-y"

    def as_list(self) -> list[float]:
        return [self.x, self.y, self.z, self.dx, self.dy, self.dz]


@dataclass(frozen=True)
class Layout:
    outer: tuple[float, float, float]
    radar: Box
    devkit: Box
    imu: Box
    window: tuple[float, float, float, float]  # x, z, width, height
    antenna: tuple[float, float, float, float]  # x, z, width, height on the radar's front face
    cable: tuple[float, float, float]
    params: dict  # type: ignore[type-arg]


def layout(params: dict | None = None) -> Layout:  # type: ignore[type-arg]
    p = params or tomllib.loads(PARAMS.read_text())
    w, fl, c = p["wall"], p["floor"], p["clearance"]
    r, d, m = p["radar"], p["devkit"], p["imu"]
    inner_x = c + d["length"] + c + m["length"] + c
    inner_x = max(inner_x, r["length"] + 2 * c)
    radar_front = w + RADAR_BOSS
    devkit_y = radar_front + r["depth"] + 2 * c
    inner_y = devkit_y - w + max(d["width"], m["width"]) + c
    radar = Box(w + (inner_x - r["length"]) / 2, radar_front, fl + c, r["length"], r["depth"], r["height"], "-y")
    devkit = Box(w + c, devkit_y, fl + d["standoff"], d["length"], d["width"], d["height"], "-z")
    imu = Box(devkit.x + d["length"] + c, devkit_y, fl + m["standoff"], m["length"], m["width"], m["height"], "-z")
    top = max(b.z + b.dz for b in (radar, devkit, imu)) + c + LID_LIP
    outer = (inner_x + 2 * w, inner_y + 2 * w, top)
    ant_x = radar.x + (r["length"] - r["antenna_w"]) / 2
    ant_z = radar.z + (r["height"] - r["antenna_h"]) / 2
    mg = r["window_margin"]
    window = (ant_x - mg, ant_z - mg, r["antenna_w"] + 2 * mg, r["antenna_h"] + 2 * mg)
    cable = (devkit.x + d["length"] / 2, devkit.z + 4, p["cable"]["diameter"])
    return Layout(outer, radar, devkit, imu, window, (ant_x, ant_z, r["antenna_w"], r["antenna_h"]), cable, p)


def scad_defines(lay: Layout, part: str) -> list[str]:
    values = {
        "part": f'"{part}"',
        "wall": lay.params["wall"],
        "floor_t": lay.params["floor"],
        "lid_t": lay.params["lid"],
        "outer": list(lay.outer),
        "radar_box": lay.radar.as_list(),
        "window": list(lay.window),
        "devkit_box": lay.devkit.as_list(),
        "devkit_standoff": lay.params["devkit"]["standoff"],
        "imu_box": lay.imu.as_list(),
        "imu_standoff": lay.params["imu"]["standoff"],
        "cable": [lay.cable[0], lay.cable[1], lay.cable[2]],
        "boss": RADAR_BOSS,
    }
    defines = []
    for key, value in values.items():
        text = value if isinstance(value, str) else str(value).replace(" ", "")
        defines += ["-D", f"{key}={text}"]
    return defines


def openscad() -> str:
    found = shutil.which("openscad")
    if not found:
        raise FileNotFoundError("openscad not found: apt-get install openscad")
    return found


def render(part: str, out: Path, lay: Layout | None = None) -> Path:
    lay = lay or layout()
    subprocess.run(
        [openscad(), "-o", str(out), *scad_defines(lay, part), str(SCAD)], check=True, capture_output=True, text=True
    )
    return out


def read_stl(path: Path) -> np.ndarray:
    """Triangles (n, 3, 3) from an ASCII or binary STL."""
    data = path.read_bytes()
    if data[:5] == b"solid" and b"facet" in data[:512]:
        numbers = [line.split()[1:] for line in data.decode().splitlines() if line.strip().startswith("vertex")]
        return np.array(numbers, dtype=np.float64).reshape(-1, 3, 3)
    count = int.from_bytes(data[80:84], "little")
    records = np.frombuffer(data[84 : 84 + 50 * count], dtype=np.dtype([("n", "<3f4"), ("v", "<9f4"), ("a", "<u2")]))
    return records["v"].astype(np.float64).reshape(-1, 3, 3)


def ray_hits(triangles: np.ndarray, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Möller-Trumbore: for each origin, how many triangles the ray crosses (t > 0)."""
    v0, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    usable = np.abs(det) > 1e-12
    v0, e1, e2, p, det = v0[usable], e1[usable], e2[usable], p[usable], det[usable]
    inv = 1.0 / det
    hits = np.zeros(len(origins), dtype=np.int64)
    for start in range(0, len(origins), 256):
        o = origins[start : start + 256][:, None, :]
        s = o - v0[None]
        u = np.einsum("nij,ij->ni", s, p) * inv
        q = np.cross(s, e1[None])
        v = (q @ direction) * inv
        t = np.einsum("nij,ij->ni", q, e2) * inv
        crossing = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        hits[start : start + 256] = crossing.sum(axis=1)
    return hits


def inside_solid(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Point-in-mesh by ray parity, along a skewed direction to avoid edges and faces."""
    direction = np.array([0.5773, 0.5774, 0.5775])
    return ray_hits(triangles, points, direction / np.linalg.norm(direction)) % 2 == 1


def clearance_samples(box: Box, clearance: float, step: float = 1.0) -> np.ndarray:
    """Points filling the board volume grown by the clearance, except on its mounting face."""
    lo = np.array([box.x, box.y, box.z]) - clearance
    hi = np.array([box.x + box.dx, box.y + box.dy, box.z + box.dz]) + clearance
    axis = {"-z": 2, "-y": 1}[box.mount_face]
    lo[axis] += clearance + 0.05  # the mounting face itself rests on its posts or bosses
    axes = [np.arange(a + 1e-3, b, step) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def beam_rays(lay: Layout, steps: int = 5) -> tuple[np.ndarray, list[np.ndarray]]:
    """Origins over the antenna patch and directions across the beam cone (towards -y)."""
    x, z, w, h = lay.antenna
    xs, zs = np.linspace(x, x + w, steps), np.linspace(z, z + h, steps)
    origins = np.array([[a, lay.radar.y - 1e-3, b] for a in xs for b in zs])
    half = math.radians(lay.params["radar"]["beam_half_angle"])
    directions = []
    for ax in (-half, 0.0, half):
        for az in (-half, 0.0, half):
            d = np.array([math.tan(ax), -1.0, math.tan(az)])
            directions.append(d / np.linalg.norm(d))
    return origins, directions


def check(base_stl: Path, lay: Layout | None = None) -> list[str]:
    """Problems found on the rendered base; empty when every board fits and the beam is clear."""
    lay = lay or layout()
    triangles = read_stl(base_stl)
    found = []
    for name, box in (("radar", lay.radar), ("devkit", lay.devkit), ("imu", lay.imu)):
        points = clearance_samples(box, lay.params["clearance"])
        blocked = inside_solid(triangles, points)
        if blocked.any():
            found.append(
                f"{name}: {int(blocked.sum())} sample points within the clearance are inside plastic, "
                f"e.g. {points[blocked][0].round(2).tolist()}"
            )
    origins, directions = beam_rays(lay)
    for direction in directions:
        hits = ray_hits(triangles, origins, direction)
        if hits.any():
            found.append(
                f"radar beam direction {direction.round(2).tolist()} hits the enclosure "
                f"from {int((hits > 0).sum())} antenna points"
            )
    return found


def picture(base_stl: Path, lid_stl: Path, out: Path, lay: Layout | None = None) -> Path:
    """A PNG of the base with its boards, and the lid lifted above it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    lay = lay or layout()
    fig = plt.figure(figsize=(8, 6))
    ax = fig.add_subplot(projection="3d")
    base = read_stl(base_stl)
    lid = read_stl(lid_stl) + np.array([0, 0, 25.0])
    ax.add_collection3d(Poly3DCollection(base, facecolor="#9ecae1", edgecolor="none", alpha=0.18))
    ax.add_collection3d(Poly3DCollection(lid, facecolor="#c6dbef", edgecolor="none", alpha=0.15))
    for box, colour in ((lay.radar, "#e6550d"), (lay.devkit, "#31a354"), (lay.imu, "#756bb1")):
        x, y, z, dx, dy, dz = box.as_list()
        corners = np.array([[x + a * dx, y + b * dy, z + c * dz] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
        faces = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
        ax.add_collection3d(
            Poly3DCollection(
                [corners[f] for f in faces], facecolor=colour, edgecolor="black", linewidths=0.3, alpha=0.95
            )
        )
    wx, wz, ww, wh = lay.window
    ax.text(wx + ww / 2, -12, wz + wh + 4, "radar window", fontsize=8)
    outer = np.array(lay.outer)
    ax.set_xlim(0, outer[0])
    ax.set_ylim(-15, outer[1])
    ax.set_zlim(0, outer[2] + 30)
    ax.set_box_aspect((outer[0], outer[1] + 15, outer[2] + 30))
    ax.view_init(elev=24, azim=-62)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_zlabel("z (mm)")
    ax.set_title("Noctis enclosure: radar (orange), ESP32 DevKit (green), MPU-6050 (purple)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
