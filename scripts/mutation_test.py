"""Mutation testing of the modules where a silent bug costs most; prints the kill rate per module.

    pip install -e .[mutation]
    nice -n 15 python scripts/mutation_test.py                  # every module (~30-60 min on 2 shared cores)
    nice -n 15 python scripts/mutation_test.py evaluation dagger # only these
    nice -n 15 python scripts/mutation_test.py dagger --functions beta_at DAgger.act   # only these functions
    python scripts/mutation_test.py --list

Tool: **mutmut 3.8.1**, chosen over cosmic-ray and pytest-gremlins because (1) it installs from PyPI and needs
nothing else (cosmic-ray needs a session database and a baseline/exec/report cycle per module), (2) it imports the
test session once and forks per mutant (``process_isolation = forkserver``, the mode it documents for torch), so
torch, MuJoCo and rsl-rl are not re-imported for every mutant as cosmic-ray's one-process-per-mutant runs would
(seconds each on this machine), and (3) its first pass records which tests call each function, and each mutant then
runs only those tests. mutmut 3.3 skipped every decorated function and method (our ``@dataclass`` results and
``@torch.inference_mode()`` evaluation); 3.8 mutates methods of dataclasses but still not functions under other
decorators, so in the temporary copy a module-level ``@torch.inference_mode()`` decorator is moved to an assignment
at the end of the module (``f = torch.inference_mode()(f)``, the same function), where mutmut's trampoline is
wrapped instead.

What is and is not mutated, which matters for reading the numbers:

* code inside functions and methods; not module- or class-level constants (dataclass defaults such as the reward
  weights and the rotor spin signs are covered by the planted bugs of ``scripts/plant_bugs.py`` instead);
* not lines that only build messages or logs (``do_not_mutate_patterns``: lines starting with a string literal, or
  containing ``raise``, ``print(``, ``errors.append(``): an error message's wording is not behaviour, and the
  tests check the messages' key words, not every character.

For each module, the repository (without ``.git`` and ``logs``) is copied to a temporary folder, a ``setup.cfg``
with a ``[mutmut]`` section is written there (``only_mutate`` = the module's files, test selection = the fast tests
that cover the module), and ``mutmut run`` runs there; the working tree is never modified. Kill rate =
(killed + timeout) / all mutants, with timeouts also reported apart; "no tests" (no selected test executes the mutated function) counts as surviving."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

#: module name → (files to mutate, fast tests that cover them). Slow end-to-end tests (train.py runs) are left out:
#: they would be re-run for every mutant.
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "point_ctrl": (["foundation/tasks/point_ctrl/point_ctrl_env.py"],
                   ["tests/tasks/test_point_ctrl_physics.py", "tests/tasks/test_point_ctrl.py",
                    "tests/envs/test_direct_rl_env.py"]),
    # Not tests/tasks/test_point_ctrl.py: its MuJoCo C vs Warp comparison alone takes ~9 s per mutant of step().
    "envs": (["foundation/envs/direct_rl_env.py", "foundation/envs/rsl_rl_vec_env.py",
              "foundation/envs/direct_rl_env_cfg.py"],
             ["tests/envs/test_direct_rl_env.py", "tests/envs/test_substep_fusion.py",
              "tests/tasks/test_point_ctrl_physics.py",
              "tests/rsl_rl/test_faults.py::test_a_finite_blow_up_resets_only_its_env_and_is_counted",
              "tests/rsl_rl/test_faults.py::test_a_non_finite_reward_or_observation_never_reaches_the_learner"]),
    "evaluation": (["foundation/rsl_rl/evaluation.py"], ["tests/rsl_rl/test_evaluation.py"]),
    "runner": (["foundation/rsl_rl/runner.py"],
               ["tests/rsl_rl/test_evaluation.py", "tests/rsl_rl/test_checkpoint.py"]),
    "dagger": (["foundation/rsl_rl/dagger.py"],
               ["tests/rsl_rl/test_dagger_recurrent.py", "tests/rsl_rl/test_dagger_settings.py",
                "tests/rsl_rl/test_dagger.py", "tests/rsl_rl/test_evaluation.py"]),
    "aggregated_buffer": (["foundation/rsl_rl/aggregated_buffer.py"],
                          ["tests/rsl_rl/test_aggregated_buffer.py", "tests/rsl_rl/test_dagger_recurrent.py"]),
    # test_faults.py and test_resume.py (SIGKILL subprocesses, whole train.py runs) are left out: too slow per mutant.
    # The default-log-root test is deselected: it checks the project root, which mutmut's ``mutants/`` copy is not.
    "checkpoints": (["foundation/rsl_rl/checkpoints.py"],
                    ["tests/rsl_rl/test_checkpoint.py", "tests/rsl_rl/test_validation.py",
                     "--deselect=tests/rsl_rl/test_validation.py::"
                     "test_the_default_log_root_is_the_projects_whatever_the_working_directory"]),
}

#: ``--core``: only the functions where a silent bug changes results (the rest, e.g. constructors' tensor
#: allocation and argument checks, is left out to fit a run into a working session on a loaded 2-core machine).
#: ``Class.method`` or ``function``.
CORE_FUNCTIONS: dict[str, list[str]] = {
    "point_ctrl": ["PointCtrlEnv._pre_physics_step", "PointCtrlEnv._apply_action", "PointCtrlEnv._root_pos",
                   "PointCtrlEnv._root_quat", "PointCtrlEnv.distance_to_goal", "PointCtrlEnv._get_observations",
                   "PointCtrlEnv._get_rewards", "PointCtrlEnv._get_dones"],
    "dagger": ["beta_at", "DAgger.act", "DAgger.process_env_step", "DAgger.update", "DAgger._feedforward_loss",
               "DAgger._recurrent_loss", "DAgger.save", "DAgger.load"],
    # The env layer's step/reset plumbing (decimation, episode length, done flags, resets, non-finite handling) and
    # the rsl-rl wrapper's action clipping, observation and done conversion; not the config's validate() (a wrong
    # value is refused or accepted loudly) nor close(), observation_sizes() and the NotImplementedError hooks.
    "envs": ["DirectRLEnv.__init__", "DirectRLEnv.reset", "DirectRLEnv.get_observations", "DirectRLEnv.step",
             "DirectRLEnv._runaway_envs", "DirectRLEnv._reset_idx", "RslRlVecEnvWrapper.__init__",
             "RslRlVecEnvWrapper.get_observations", "RslRlVecEnvWrapper.reset", "RslRlVecEnvWrapper.step"],
    "aggregated_buffer": ["AggregatedBuffer.extend", "AggregatedBuffer.sample_transitions",
                          "AggregatedBuffer.sample_sequences", "AggregatedBuffer._sample_positions",
                          "AggregatedBuffer.newest", "AggregatedBuffer.load_state_dict"],
}


def mutant_patterns(name: str, core: bool, functions: list[str] | None = None) -> list[str]:
    """mutmut mutant-name globs of the module's core functions, or of ``functions`` when given (``[]``: every
    mutant)."""
    if functions:
        selected = functions
    elif core and name in CORE_FUNCTIONS:
        selected = CORE_FUNCTIONS[name]
    else:
        return []
    return [f"*ǁ{f.replace('.', 'ǁ')}__mutmut_*" if "." in f else f"*.x_{f}__mutmut_*" for f in selected]


def copy_repo(dest: pathlib.Path) -> None:
    ignore = shutil.ignore_patterns(".git", "logs", "__pycache__", ".pytest_cache", "mutants", "*.egg-info")
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)


#: Lines left unmutated: messages and logs (see the module docstring).
DO_NOT_MUTATE_PATTERNS = [r"^\s*f?[\"']", r"\braise\b", r"\bprint\(", r"errors\.append\("]


#: A mutant "times out" after this multiple of its tests' clean duration plus this many seconds (mutmut's defaults,
#: 15 and 1 s, turned ordinary mutants into timeouts when the machine was loaded by other jobs and this ran niced).
TIMEOUT_MULTIPLIER, TIMEOUT_CONSTANT_S = 100.0, 60.0


def write_config(root: pathlib.Path, mutate: list[str], tests: list[str]) -> None:
    """The ``[mutmut]`` section of ``setup.cfg`` in the copy; moves ``@torch.inference_mode()`` decorators of the
    mutated files to assignments after the module's code (mutmut does not mutate decorated functions)."""
    for path in mutate:
        file = root / path
        text = file.read_text()
        names = re.findall(r"(?m)^@torch\.inference_mode\(\)\ndef (\w+)", text)
        text = re.sub(r"(?m)^@torch\.inference_mode\(\)\n(?=def )", "", text)
        file.write_text(text + "".join(f"\n{n} = torch.inference_mode()({n})\n" for n in names))
    lines = ["[mutmut]", "source_paths = foundation/", "process_isolation = forkserver",
             f"timeout_multiplier = {TIMEOUT_MULTIPLIER}", f"timeout_constant = {TIMEOUT_CONSTANT_S}", "only_mutate ="]
    lines += [f"    {p}" for p in mutate] + ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
    lines += ["do_not_mutate_patterns ="] + [f"    {p}" for p in DO_NOT_MUTATE_PATTERNS]
    (root / "setup.cfg").write_text("\n".join(lines) + "\n")


def results(root: pathlib.Path, mutate: list[str]) -> dict[str, int]:
    """Exit code of every mutant of the mutated files, from mutmut's ``.meta`` files."""
    codes: dict[str, int] = {}
    for path in mutate:
        meta = json.loads((root / "mutants" / (path + ".meta")).read_text())
        codes.update(meta["exit_code_by_key"])
    return codes


def classify(code: int | None) -> str:
    """mutmut 3.8's meaning of a test run's exit code (``mutmut.__main__.status_by_exit_code``)."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code.get(code, f"exit code {code}")


def run_module(name: str, max_children: int, show: bool, core: bool, functions: list[str] | None = None) -> dict:
    mutate, tests = MODULES[name]
    patterns = mutant_patterns(name, core, functions)
    with tempfile.TemporaryDirectory(prefix=f"mutation_{name}_") as tmp:
        root = pathlib.Path(tmp) / "repo"
        copy_repo(root)
        write_config(root, mutate, tests)
        env = {**os.environ, "PYTHONPATH": "",  # the mutated copy, never the editable install, must be imported
               "WARP_CACHE_PATH": os.environ.get("WARP_CACHE_PATH", os.path.expanduser("~/.cache/foundation/warp"))}
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *patterns],
                              cwd=root, env=env, capture_output=True, text=True)
        elapsed = time.time() - start
        if not (root / "mutants").is_dir() or proc.returncode not in (0, 1):
            print(proc.stdout[-4000:], proc.stderr[-4000:])
            raise SystemExit(f"error: mutmut failed on module {name} (exit code {proc.returncode})")
        codes = results(root, mutate)
        if codes and all(v is None for v in codes.values()):
            print(proc.stdout[-4000:], proc.stderr[-4000:])
            raise SystemExit(f"error: mutmut checked no mutant of module {name} (see its output above)")
        if patterns:
            codes = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
        status = {k: classify(v) for k, v in codes.items()}
        counts: dict[str, int] = {}
        for s in status.values():
            counts[s] = counts.get(s, 0) + 1
        killed = sum(1 for s in status.values() if s in ("killed", "timeout"))
        survivors = sorted(k for k, s in status.items() if s not in ("killed", "timeout"))
        diffs = {}
        if show:
            for key in survivors:
                diff = subprocess.run([sys.executable, "-m", "mutmut", "show", key], cwd=root, env=env,
                                      capture_output=True, text=True)
                diffs[key] = f"[{status[key]}]\n{diff.stdout.strip()}"
        return {"module": name, "core_only": bool(patterns), "total": len(codes), "killed": killed, "counts": counts, "seconds": elapsed,
                "survivors": survivors, "diffs": diffs, "status": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"Modules to test (default: all of {list(MODULES)}).")
    parser.add_argument("--list", action="store_true", help="List the modules, their files and tests, then exit.")
    parser.add_argument("--max_children", type=int, default=2, help="Mutants tested in parallel.")
    parser.add_argument("--show_survivors", action="store_true", help="Print the diff of every surviving mutant.")
    parser.add_argument("--core", action="store_true",
                        help="Mutate only each module's CORE_FUNCTIONS (where one is listed).")
    parser.add_argument("--functions", nargs="+", metavar="F",
                        help="Mutate only these functions (``Class.method`` or ``function``) of the one module given, "
                             "e.g. to finish a run that stopped part-way.")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args(argv)
    if args.functions and len(args.modules) != 1:
        parser.error("--functions needs exactly one module")
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; known: {list(MODULES)}")
    if args.list:
        for name, (mutate, tests) in MODULES.items():
            print(f"{name:18s} {', '.join(mutate)}  ← {', '.join(tests)}")
            if name in CORE_FUNCTIONS:
                print(f"{'':18s} --core: {', '.join(CORE_FUNCTIONS[name])}")
        return 0
    try:
        import mutmut  # noqa: F401
    except ImportError:
        raise SystemExit("error: mutmut is not installed: pip install -e .[mutation]") from None

    rows = []
    for name in args.modules or list(MODULES):
        row = run_module(name, args.max_children, args.show_survivors, args.core, args.functions)
        rows.append(row)
        rate = row["killed"] / row["total"] if row["total"] else float("nan")
        print(f"{name + (' (core)' if row['core_only'] else ''):25s} kill rate {100 * rate:5.1f} %  ({row['killed']}/{row['total']}; {row['counts']}; "
              f"{row['seconds']:.0f} s)", flush=True)
        for key in row["survivors"]:
            print(f"    survivor {key}" + (f"\n{row['diffs'][key]}\n" if row["diffs"] else ""), flush=True)
        if args.json:  # after every module: a long run stopped half-way keeps what it measured
            pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
