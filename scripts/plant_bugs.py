"""Plant known, plausible bugs one at a time in a temporary copy of the repository and check the tests catch each.

    python scripts/plant_bugs.py                 # every bug; prints caught / MISSED per bug, exits 1 if one is missed
    python scripts/plant_bugs.py --list          # the bugs and the tests that must catch them
    python scripts/plant_bugs.py yaw_sign eval_teacher   # only these

Each bug is a literal edit (file, old text, new text) of the package; the old text must occur exactly once. For
each bug the repository (without ``.git`` and ``logs``) is copied to a temporary folder, the edit applied, and the
bug's tests run there with ``pytest -x``: "caught" means a test failed. First, the same tests run on the unmodified
copy and must pass (else the result would mean nothing). Nothing in the working tree is modified.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = "foundation/tasks/point_ctrl/point_ctrl_env.py"
PHYSICS = "tests/tasks/test_point_ctrl_physics.py"
EVALUATION = "tests/rsl_rl/test_evaluation.py"
DAGGER_RNN = "tests/rsl_rl/test_dagger_recurrent.py"


@dataclass(frozen=True)
class Bug:
    """A planted bug: replace ``old`` by ``new`` in ``path``; ``tests`` (pytest node ids) must catch it."""

    name: str
    description: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = [
    Bug("yaw_sign", "X mixer: yaw-torque signs of the rotors flipped", ENV,
        "rotor_spin: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)",
        "rotor_spin: tuple[float, float, float, float] = (1.0, -1.0, 1.0, -1.0)", (PHYSICS,)),
    Bug("roll_sign", "X mixer: roll torque τx = -Σ y_i f_i", ENV,
        "[torch.ones(4, device=dev), rotor_xy[:, 1], -rotor_xy[:, 0]",
        "[torch.ones(4, device=dev), -rotor_xy[:, 1], -rotor_xy[:, 0]", (PHYSICS,)),
    Bug("pitch_sign", "X mixer: pitch torque τy = +Σ x_i f_i", ENV,
        "[torch.ones(4, device=dev), rotor_xy[:, 1], -rotor_xy[:, 0]",
        "[torch.ones(4, device=dev), rotor_xy[:, 1], rotor_xy[:, 0]", (PHYSICS,)),
    Bug("thrust_transposed", "tilted body: thrust along Rᵀ ẑ instead of R ẑ", ENV,
        "[2 * (x * z + w * y), 2 * (y * z - w * x),", "[2 * (x * z - w * y), 2 * (y * z + w * x),", (PHYSICS,)),
    Bug("mass_force_scale", "mass randomisation: force scaled by m / m₀ instead of m₀ / m", ENV,
        "self._force_scale[env_ids] = rc.mass_kg / flying_mass", "self._force_scale[env_ids] = flying_mass / rc.mass_kg",
        (PHYSICS,)),
    Bug("obs_rotation", "observation rotated into the body frame with R instead of Rᵀ", ENV,
        "vecs_b = (rot.transpose(1, 2) @ vecs_w)", "vecs_b = (rot @ vecs_w)",
        (PHYSICS, "tests/tasks/test_point_ctrl.py")),
    Bug("obs_rotmat_transposed", "rotation block of the observation is Rᵀ", ENV,
        "qvel[:, 3:], rot.flatten(1), self._actions", "qvel[:, 3:], rot.transpose(1, 2).flatten(1), self._actions",
        (PHYSICS, "tests/tasks/test_point_ctrl.py")),
    Bug("accel_stale_at_start", "accelerometer shows the previous episode's last reading at an episode start", ENV,
        "self._accel_valid[env_ids] = False", "self._accel_valid[env_ids] = True",
        (f"{PHYSICS}::test_the_accelerometer_reads_the_specific_force_in_the_body_frame",)),
    Bug("accel_main_generator", "accelerometer noise drawn from the env's generator (the teacher's stream shifts)", ENV,
        "generator=self._imu_generator", "generator=self.generator",
        ("tests/tasks/test_point_ctrl_randomization.py::"
         "test_accelerometer_noise_has_its_configured_scale_and_leaves_every_other_draw_as_it_was",)),
    Bug("fine_scale", "fine distance term uses the coarse length scale", ENV,
        "1.0 - torch.tanh(d / rc.distance_fine_scale_m)", "1.0 - torch.tanh(d / rc.distance_coarse_scale_m)",
        (PHYSICS,)),
    Bug("fine_scale_default", "fine distance length scale 0.2 m instead of 0.1 m", ENV,
        "distance_fine_scale_m: float = 0.1", "distance_fine_scale_m: float = 0.2", (PHYSICS,)),
    Bug("crash_scaled", "crash penalty multiplied by step_dt", ENV,
        "rw.action_rate * self.step_dt, rw.crash]", "rw.action_rate * self.step_dt, rw.crash * self.step_dt]",
        (PHYSICS,)),
    Bug("success_radius_x10", "success radius ×10", ENV,
        "success = ~crashed & (d < self.cfg.goal.success_radius_m)",
        "success = ~crashed & (d < 10 * self.cfg.goal.success_radius_m)", (PHYSICS,)),
    Bug("success_despite_crash", "a crash near the goal counts as success", ENV,
        "success = ~crashed & (d < self.cfg.goal.success_radius_m)",
        "success = d < self.cfg.goal.success_radius_m", (PHYSICS,)),
    Bug("eval_teacher", "distillation best model chosen by evaluating the teacher", "foundation/rsl_rl/runner.py",
        "policy = self.alg.get_policy()",
        "policy = self.alg.teacher if hasattr(self.alg, 'teacher') else self.alg.get_policy()", (EVALUATION,)),
    Bug("score_sign", "best-checkpoint score with its sign flipped", "foundation/rsl_rl/evaluation.py",
        "return self.success_rate - distance_weight * self.final_distance_m",
        "return distance_weight * self.final_distance_m - self.success_rate", (EVALUATION,)),
    Bug("best_comparison", "best model kept when the score is worse", "foundation/rsl_rl/runner.py",
        "result.score(self._distance_weight) > self.best_eval.score(",
        "result.score(self._distance_weight) < self.best_eval.score(", (EVALUATION,)),
    Bug("eval_seed", "each evaluation on different episodes (no seed)", "foundation/rsl_rl/runner.py",
        "result = evaluate(policy, self._eval_env, seed=self._eval_seed)",
        "result = evaluate(policy, self._eval_env)", (EVALUATION,)),
    Bug("eval_later_episode", "evaluation counts a later episode than the first", "foundation/rsl_rl/evaluation.py",
        "            first = ids[~done[ids]]\n            keep = ~done[ids]\n",
        "            first = ids\n            keep = torch.ones_like(ids, dtype=torch.bool)\n", (EVALUATION,)),
    Bug("eval_no_initial_reset", "evaluation keeps the policy's stale recurrent state",
        "foundation/rsl_rl/evaluation.py",
        "    obs, _ = env.reset(seed)\n    policy.reset()\n", "    obs, _ = env.reset(seed)\n", (EVALUATION,)),
    Bug("dagger_mask_ignored", "recurrent DAgger loss ignores its mask", "foundation/rsl_rl/dagger.py",
        "return (per_step * mask).sum() / mask.sum().clamp(min=1)", "return per_step.mean()", (DAGGER_RNN,)),
    Bug("dagger_no_student_reset", "student's hidden state not reset at episode ends", "foundation/rsl_rl/dagger.py",
        "        self.student.reset(dones)\n", "", (DAGGER_RNN,)),
    Bug("dagger_buffer_not_restored", "resume never restores the DAgger buffer", "foundation/rsl_rl/dagger.py",
        'restored = bool(load_cfg and load_cfg.get("buffer")) and "buffer" in loaded_dict', "restored = False",
        ("tests/rsl_rl/test_dagger.py::test_checkpoint_round_trip_restores_the_dagger_state",)),
    Bug("onnx_static_batch", "recurrent ONNX export with a batch of 1 only", "foundation/rsl_rl/export.py",
        "for inputs, shapes in ((dummy2, dynamic), (dummy, None)):", "for inputs, shapes in ((dummy, None),):",
        ("tests/rsl_rl/test_play_export_report.py::test_export_gru_student_at_batch_three_and_after_reset",)),
    Bug("figure8_goal_lags", "figure-8 error measured against the goal of the previous step",
        "foundation/rsl_rl/play.py", "task.set_goal(all_ids, figure8((task.episode_length_buf + 1) * dt))",
        "task.set_goal(all_ids, figure8(task.episode_length_buf * dt))",
        ("tests/rsl_rl/test_play_export_report.py::"
         "test_figure8_tracking_error_of_a_hovering_drone_is_its_distance_to_the_moving_goal",)),
]


def copy_repo(dest: pathlib.Path) -> None:
    """Copy the working tree (without .git, logs, caches) to ``dest``."""
    ignore = shutil.ignore_patterns(".git", "logs", "__pycache__", ".pytest_cache", "mutants", "*.egg-info")
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)


def run_tests(root: pathlib.Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root),
           "WARP_CACHE_PATH": os.environ.get("WARP_CACHE_PATH", os.path.expanduser("~/.cache/foundation/warp"))}
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=root,
                          env=env, capture_output=True, text=True)


def first_failure(output: str) -> str:
    """The name of the first failed test in pytest's short summary."""
    for line in output.splitlines():
        if line.startswith("FAILED "):
            return line.split(" ")[1].split(" - ")[0]
    return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", help="Names of the bugs to plant (default: all).")
    parser.add_argument("--list", action="store_true", help="List the bugs and their tests, then exit.")
    args = parser.parse_args(argv)
    names = [b.name for b in BUGS]
    unknown = [n for n in args.bugs if n not in names]
    if unknown:
        parser.error(f"unknown bug(s) {unknown}; known: {names}")
    bugs = [b for b in BUGS if not args.bugs or b.name in args.bugs]
    if args.list:
        for b in bugs:
            print(f"{b.name:28s} {b.description}  [{b.path}]  ← {', '.join(b.tests)}")
        return 0

    with tempfile.TemporaryDirectory(prefix="plant_bugs_") as tmp:
        root = pathlib.Path(tmp) / "repo"
        copy_repo(root)
        for b in bugs:
            count = (root / b.path).read_text().count(b.old)
            if count != 1:
                print(f"error: bug {b.name}: the text to replace occurs {count} times in {b.path}", file=sys.stderr)
                return 2
        all_tests = tuple(dict.fromkeys(t for b in bugs for t in b.tests))
        baseline = run_tests(root, all_tests)
        if baseline.returncode != 0:
            print(baseline.stdout[-3000:], baseline.stderr[-3000:])
            print("error: the tests fail without any planted bug", file=sys.stderr)
            return 2
        print(f"baseline: {len(all_tests)} test file(s)/node(s) pass unmodified")
        missed = []
        for b in bugs:
            path = root / b.path
            original = path.read_text()
            path.write_text(original.replace(b.old, b.new))
            try:
                proc = run_tests(root, b.tests)
            finally:
                path.write_text(original)
            if proc.returncode == 1:
                print(f"caught  {b.name:28s} {b.description}  ← {first_failure(proc.stdout)}")
            else:
                missed.append(b.name)
                print(f"MISSED  {b.name:28s} {b.description}  (pytest exit code {proc.returncode})")
        print(f"\n{len(bugs) - len(missed)} of {len(bugs)} planted bugs caught" +
              (f"; missed: {', '.join(missed)}" if missed else ""))
        return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
