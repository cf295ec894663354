"""Write foundation/assets/gear_assembly/scene.xml: the Panda, a gear held in its fingers, and a gear base with a shaft.

This one-off asset builder is not part of the package at run time; every size, mass and contact parameter of the
parts lives here, once, with its source or reason, and is written into the MJCF (the task reads the geometry back
from the compiled model: sites ``gear_center``, ``shaft_tip``, ``gear_seated``). Measurements behind the contact
settings: docs/gear_physics.md. Run from anywhere:  python scripts/build_gear_assets.py

Collision geometry: only pairs that MuJoCo collides analytically (its table ``mjCOLLISIONFUNC``: sphere-cylinder,
sphere-capsule, capsule-box, box-plane, ...). Cylinder-box and mesh pairs go through the general convex collider,
whose penetration depth for a fingertip box on a cylindrical rim was not even monotonic in the overlap (0.12, 0.69,
0.37 mm for 0.2, 0.5, 1.0 mm pushed in) and let a gear's hole boxes sink 4-5 mm into a cylindrical shaft
(docs/gear_physics.md). Collision bits (MuJoCo collides two geoms when ``contype1 & conaffinity2`` or
``contype2 & conaffinity1`` is non-zero): 1 robot and floor, 2 gear hole and shaft, 4 grip surfaces, 8 the gear's
feet and the boss.

* gear: the hole is ``GEAR_HOLE_LAYERS`` rings of ``GEAR_HOLE_SPHERES`` spheres each (bits 1+2), tangent to a
  circle of radius ``GEAR_HOLE_RADIUS_M``, the rings staggered by half a sphere: 0.2 mm radial free play in every
  direction, 0.4 mm diametral clearance (``hole_clearance_m``). The rim is ``GEAR_TEETH`` vertical capsules of outer radius
  ``GEAR_OUTER_RADIUS_M`` (bit 4: the floor, the base plate and the four small fingertip pads, which carry bit 4,
  see franka_emika_panda/panda.xml): the gear's teeth, and its grasp surface. The finger's collision mesh (bit 1
  only) is a convex hull that lies 2.6 mm inside the pads' faces between them, and must not be what grips.
  ``GEAR_FEET`` small spheres under the gear (bit 8) rest on the boss.
* base (free joint, heavy, on the floor): a plate (bits 1+2+4), a boss (bit 8) and the shaft (bit 2): a cylinder up
  to ``SHAFT_EDGE_RADIUS_M`` below the tip, then a cylinder of radius ``SHAFT_RADIUS_M - SHAFT_EDGE_RADIUS_M`` and a
  ring of ``SHAFT_EDGE_CAPSULES`` horizontal capsules of radius ``SHAFT_EDGE_RADIUS_M``: the tip's edge rounded with
  that radius, the shaft's lead-in chamfer.
"""

from __future__ import annotations

import math
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT = REPO / "foundation" / "assets" / "gear_assembly" / "scene.xml"

# ------------------------------------------------------------------------------------------------------------ parts
#: Gear mass, kg: Isaac Lab's gear-assembly cfg (../shared/DESIGN.md section 4).
GEAR_MASS_KG = 0.019
#: Gear thickness (along its axis), m: the Factory / Isaac Lab gears are ~1 cm thick; the prototype used 10 mm.
GEAR_THICKNESS_M = 0.010
#: Outer radius of the gear (tips of its teeth, the grasp surface), m: a small gear that the Panda's fingers (0-80 mm
#: opening) grip at 30 mm across.
GEAR_OUTER_RADIUS_M = 0.015
#: Teeth: vertical capsules of this radius, m, as many as GEAR_TEETH, centred GEAR_OUTER_RADIUS_M - radius out.
GEAR_TEETH = 16
GEAR_TOOTH_RADIUS_M = 0.0015
#: Radius of the circle the hole's spheres are tangent to, m, and the spheres: radius, count per ring, rings.
GEAR_HOLE_RADIUS_M = 0.0052
GEAR_HOLE_SPHERE_RADIUS_M = 0.002
GEAR_HOLE_SPHERES = 24
GEAR_HOLE_LAYERS = 2
#: Feet the gear rests on when seated (spheres touching only the boss, collision bit 8), count, radius and radial
#: position, m: the 24 lowest hole spheres on the boss were 24 contacts, 4x slower, and chattered (0.1 m/s kicks).
GEAR_FEET = 6
GEAR_FOOT_RADIUS_M = 0.001
GEAR_FOOT_RING_M = 0.0075

#: Shaft radius, m (the issue: ~5 mm).
SHAFT_RADIUS_M = 0.005
#: Radius of the rounded edge at the shaft tip (its lead-in chamfer), m (the issue: 0.5-1 mm), and the number of
#: capsules approximating the round edge.
SHAFT_EDGE_RADIUS_M = 0.001
SHAFT_EDGE_CAPSULES = 16
#: Shaft length above the boss, m: 10 mm of engagement for the 10 mm gear plus 10 mm of lead-in above it.
SHAFT_LENGTH_M = 0.020
#: Boss the seated gear rests on: radius and height, m. Higher than the fingertips reach below a held gear (~5 mm)
#: and narrower than the gear (the fingers pass outside it).
BOSS_RADIUS_M = 0.009
BOSS_HEIGHT_M = 0.015
#: Base plate half-sizes, m, and the base's mass, kg: heavy enough that a 10 N push from the arm neither slides
#: (mu = 1 on the floor: 49 N) nor tips it.
PLATE_HALF_M = (0.06, 0.06, 0.005)
BASE_MASS_KG = 5.0

# ------------------------------------------------------------------------------------------------------- contacts
#: Simulation options: dt 1/360 s (a 30 Hz controller = decimation 12), elliptic friction cone and impratio 10 (a
#: pyramidal cone or impratio 1 let the gear slip, DESIGN 5). Isaac Lab's dt 1/120 was measured first: the 19 g
#: gear's contacts, whose stiffness MuJoCo ties to dt (solref time constant >= 2 dt), let it sink 3-4 mm into the
#: shaft and seat from 3 mm off the axis; dt 1/360 keeps the penetration below 0.5 mm (docs/gear_physics.md).
TIMESTEP_S = 1.0 / 360.0
#: MuJoCo's constraint softness is an acceleration: a contact with effective mass m pushed with force F sinks by
#: about (1 - d) / d * F / (m * k), with d the impedance (solimp) and k = 1 / (d^2 tau^2 zeta^2) from solref. A 19 g
#: gear pressed with a few newtons is the worst case, so every contact of the gear is made stiff: tau = 2 dt (the
#: stiffest MuJoCo allows for the timestep) and d = 0.99 from the first 0.1 mm. d = 0.999 made the grip bounce the
#: gear out of the fingers and did not reduce the penetration; a smaller dt did. Measurements: docs/gear_physics.md.
#: Contacts of a base geom (priority 2) use the base's parameters, other contacts of a gear geom (priority 1) the
#: gear's, so the gear-shaft friction and the grip friction differ. Damping ratio 2 (over-damped): at 1 the seated
#: gear, pressed between the boss and the fingers, chattered (0.1 m/s sideways kicks, 0.4 mm penetration).
BASE_SOLREF = (2 * TIMESTEP_S, 2.0)
BASE_SOLIMP = (0.99, 0.99, 0.0001, 0.5, 2.0)
GEAR_SOLREF = BASE_SOLREF
GEAR_SOLIMP = BASE_SOLIMP
#: Friction of the base/shaft (sliding, torsional, rolling): lubricated steel/plastic.
BASE_FRICTION = (0.5, 0.005, 0.0001)
#: Friction of the gear against the fingertip pads: Menagerie's default 1.0 for the fingers, so a 20 N-per-finger
#: grip holds 40 N of load.
GEAR_FRICTION = (1.0, 0.005, 0.0001)

# ---------------------------------------------------------------------------------------------------- the scene
#: Nominal base position on the floor in the robot frame, m (its pose is randomised by the task around this).
BASE_POS_M = (0.5, 0.0)
IMPRATIO = 10
#: Arena per environment copy (contacts and constraints), bytes.
MEMORY = "2M"


def fmt(*values: float) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def hole_clearance_m() -> tuple[float, float]:
    """Radial free play of the shaft in one ring of spheres, m: towards a sphere, and towards the gap between two.

    The rings are staggered by half a sphere, so each covers the other's gaps: the free play of the shaft in the gear
    is the first number in every direction (tests/tasks/test_gear_physics.py measures it from the model).
    """
    n, r, rs = GEAR_HOLE_SPHERES, GEAR_HOLE_RADIUS_M + GEAR_HOLE_SPHERE_RADIUS_M, GEAR_HOLE_SPHERE_RADIUS_M
    cx, cy = r * math.cos(math.pi / n), r * math.sin(math.pi / n)  # a sphere centre next to the gap direction (x)
    reach = cx - math.sqrt(rs**2 - cy**2)  # where a circle centred on the axis first touches that sphere, along x
    return GEAR_HOLE_RADIUS_M - SHAFT_RADIUS_M, reach - SHAFT_RADIUS_M


def gear_geoms() -> list[str]:
    out = []
    r = GEAR_HOLE_RADIUS_M + GEAR_HOLE_SPHERE_RADIUS_M
    half = GEAR_THICKNESS_M / 2 - GEAR_HOLE_SPHERE_RADIUS_M
    zs = [-half + 2 * half * k / (GEAR_HOLE_LAYERS - 1) for k in range(GEAR_HOLE_LAYERS)]
    for layer, z in enumerate(zs):
        for k in range(GEAR_HOLE_SPHERES):
            a = 2 * math.pi * (k + 0.5 * layer) / GEAR_HOLE_SPHERES
            out.append(f'<geom name="gear_hole{layer}_{k}" class="gear_hole" size="{GEAR_HOLE_SPHERE_RADIUS_M:.6g}" '
                       f'pos="{fmt(r * math.cos(a), r * math.sin(a), z)}"/>')
    zf = -GEAR_THICKNESS_M / 2 + GEAR_FOOT_RADIUS_M
    for k in range(GEAR_FEET):
        a = 2 * math.pi * k / GEAR_FEET
        out.append(f'<geom name="gear_foot{k}" class="gear_foot" size="{GEAR_FOOT_RADIUS_M:.6g}" '
                   f'pos="{fmt(GEAR_FOOT_RING_M * math.cos(a), GEAR_FOOT_RING_M * math.sin(a), zf)}"/>')
    rt = GEAR_OUTER_RADIUS_M - GEAR_TOOTH_RADIUS_M
    for k in range(GEAR_TEETH):
        a = 2 * math.pi * k / GEAR_TEETH
        out.append(f'<geom name="gear_tooth{k}" class="gear_tooth" size="{fmt(GEAR_TOOTH_RADIUS_M, GEAR_THICKNESS_M / 2 - GEAR_TOOTH_RADIUS_M)}" '
                   f'pos="{fmt(rt * math.cos(a), rt * math.sin(a), 0)}"/>')
    # Visual: a ring from the hole to the teeth (a cylinder drawn over the hole would hide it: 12 boxes instead).
    n_vis, r_in, r_out = 24, GEAR_HOLE_RADIUS_M, GEAR_OUTER_RADIUS_M - GEAR_TOOTH_RADIUS_M
    w = r_out * math.tan(math.pi / n_vis)
    for k in range(n_vis):
        a = 2 * math.pi * k / n_vis
        c = (r_in + r_out) / 2
        out.append(f'<geom class="gear_visual" type="box" size="{fmt((r_out - r_in) / 2, w, GEAR_THICKNESS_M / 2 - 0.001)}" '
                   f'pos="{fmt(c * math.cos(a), c * math.sin(a), 0)}" euler="0 0 {a:.6f}"/>')
    return out


def shaft_geoms(boss_top: float) -> list[str]:
    top = boss_top + SHAFT_LENGTH_M
    re_ = SHAFT_EDGE_RADIUS_M
    body_half = (SHAFT_LENGTH_M - re_) / 2
    out = [f'<geom name="shaft" class="base_collision" type="cylinder" size="{fmt(SHAFT_RADIUS_M, body_half)}" '
           f'pos="0 0 {boss_top + body_half:.6g}"/>',
           f'<geom name="shaft_top" class="base_collision" type="cylinder" size="{fmt(SHAFT_RADIUS_M - re_, re_ / 2)}" '
           f'pos="0 0 {top - re_ / 2:.6g}"/>']
    n, rc, z = SHAFT_EDGE_CAPSULES, SHAFT_RADIUS_M - re_, top - re_
    for k in range(n):  # capsule axes: the sides of an n-gon with its corners on the circle of radius rc
        a0, a1 = 2 * math.pi * k / n, 2 * math.pi * (k + 1) / n
        out.append(f'<geom name="shaft_edge{k}" class="base_collision" type="capsule" size="{re_:.6g}" '
                   f'fromto="{fmt(rc * math.cos(a0), rc * math.sin(a0), z, rc * math.cos(a1), rc * math.sin(a1), z)}"/>')
    return out


def gear_inertia() -> str:
    """Inertia of a thick annulus (ri, ro, h) of GEAR_MASS_KG about its centre, kg m^2: (Ixx, Iyy, Izz)."""
    m, ri, ro, h = GEAR_MASS_KG, GEAR_HOLE_RADIUS_M, GEAR_OUTER_RADIUS_M - GEAR_TOOTH_RADIUS_M, GEAR_THICKNESS_M
    izz = m * (ri**2 + ro**2) / 2
    ixx = m * (3 * (ri**2 + ro**2) + h**2) / 12
    return fmt(ixx, ixx, izz)


def scene_xml() -> str:
    plate_z = PLATE_HALF_M[2]
    boss_top = 2 * plate_z + BOSS_HEIGHT_M
    shaft_top = boss_top + SHAFT_LENGTH_M
    shaft_lines = "\n      ".join(shaft_geoms(boss_top))
    gear_lines = "\n      ".join(gear_geoms())
    return f"""<!-- Generated by scripts/build_gear_assets.py: edit the numbers there, not here. -->
<mujoco model="gear_assembly_scene">
  <include file="../franka_emika_panda/panda.xml"/>
  <!-- The included panda.xml sets meshdir="assets" relative to this file's folder; point it at the Panda's. -->
  <compiler meshdir="../franka_emika_panda/assets"/>

  <option timestep="{TIMESTEP_S:.10g}" cone="elliptic" impratio="{IMPRATIO}" integrator="implicitfast"/>
  <size memory="{MEMORY}"/>
  <statistic center="{fmt(BASE_POS_M[0] / 2, 0, 0.25)}" extent="0.8"/>

  <visual>
    <headlight diffuse="0.6 0.6 0.6" ambient="0.3 0.3 0.3" specular="0 0 0"/>
    <global azimuth="150" elevation="-25" offwidth="1280" offheight="960"/>
  </visual>

  <default>
    <default class="base_collision">
      <!-- Primitives drawn as they collide (group 2, visible by default). -->
      <geom group="2" contype="2" conaffinity="2" priority="2" friction="{fmt(*BASE_FRICTION)}" solref="{fmt(*BASE_SOLREF)}"
        solimp="{fmt(*BASE_SOLIMP)}" rgba="0.55 0.57 0.6 1"/>
    </default>
    <default class="gear_collision">
      <geom group="3" priority="1" friction="{fmt(*GEAR_FRICTION)}" solref="{fmt(*GEAR_SOLREF)}"
        solimp="{fmt(*GEAR_SOLIMP)}" rgba="0.85 0.6 0.15 1"/>
      <default class="gear_hole">
        <geom type="sphere" contype="3" conaffinity="3"/>
      </default>
      <default class="gear_foot">
        <geom type="sphere" contype="8" conaffinity="8"/>
      </default>
      <default class="gear_tooth">
        <geom type="capsule" contype="4" conaffinity="4" group="2"/>
      </default>
    </default>
    <default class="gear_visual">
      <geom contype="0" conaffinity="0" group="2" rgba="0.85 0.6 0.15 1"/>
    </default>
  </default>

  <asset>
    <texture type="skybox" builtin="gradient" rgb1="0.3 0.5 0.7" rgb2="0 0 0" width="512" height="3072"/>
    <texture type="2d" name="groundplane" builtin="checker" mark="edge" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3"
      markrgb="0.8 0.8 0.8" width="300" height="300"/>
    <material name="groundplane" texture="groundplane" texuniform="true" texrepeat="5 5" reflectance="0.2"/>
  </asset>

  <worldbody>
    <light name="sun" pos="0 0 1.5" dir="0 0 -1" directional="true"/>
    <geom name="floor" size="0 0 0.05" type="plane" material="groundplane" contype="5" conaffinity="5"/>
    <camera name="overview" pos="{fmt(BASE_POS_M[0] + 0.35, -0.35, 0.3)}" xyaxes="0.707 0.707 0 -0.35 0.35 0.87" fovy="45"/>

    <!-- Gear base, {BASE_MASS_KG} kg, free so the task can place it per env through qpos. -->
    <body name="gear_base" pos="{fmt(BASE_POS_M[0], BASE_POS_M[1], 0)}">
      <freejoint name="gear_base_joint"/>
      <inertial pos="0 0 {plate_z:.6g}" mass="{BASE_MASS_KG}" diaginertia="{fmt(*(BASE_MASS_KG * (4 * PLATE_HALF_M[0] ** 2 + 4 * PLATE_HALF_M[2] ** 2) / 12,) * 2, BASE_MASS_KG * 8 * PLATE_HALF_M[0] ** 2 / 12)}"/>
      <geom name="base_plate" class="base_collision" contype="7" conaffinity="7" type="box" size="{fmt(*PLATE_HALF_M)}" pos="0 0 {plate_z:.6g}"/>
      <geom name="base_boss" class="base_collision" contype="8" conaffinity="8" type="cylinder" size="{fmt(BOSS_RADIUS_M, BOSS_HEIGHT_M / 2)}"
        pos="0 0 {2 * plate_z + BOSS_HEIGHT_M / 2:.6g}"/>
      {shaft_lines}
      <site name="shaft_tip" pos="0 0 {shaft_top:.6g}" size="0.002" rgba="0.2 0.9 0.2 0.6" group="4"/>
      <site name="gear_seated" pos="0 0 {boss_top + GEAR_THICKNESS_M / 2:.6g}" size="0.002" rgba="0.2 0.2 0.9 0.6" group="4"/>
    </body>

    <!-- Gear, {GEAR_MASS_KG * 1000:g} g, free; the task places it between the fingers. Its z axis is its axis. -->
    <body name="gear" pos="{fmt(BASE_POS_M[0], BASE_POS_M[1], shaft_top + 0.05)}">
      <freejoint name="gear_joint"/>
      <inertial pos="0 0 0" mass="{GEAR_MASS_KG}" diaginertia="{gear_inertia()}"/>
      {gear_lines}
      <site name="gear_center" pos="0 0 0" size="0.002" rgba="0.9 0.2 0.9 0.6" group="4"/>
    </body>
  </worldbody>
</mujoco>
"""


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(scene_xml())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
