"""``scripts/plant_bugs.py`` stays applicable: every planted bug's text still occurs exactly once in its file and
its tests exist, so a refactor cannot silently turn the planted-bug check into one that errors out or checks nothing
(the full run, which trains nothing but takes minutes, is not part of CI)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_plant_bugs():
    spec = importlib.util.spec_from_file_location("plant_bugs", REPO / "scripts" / "plant_bugs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_every_planted_bug_applies_once_and_names_existing_tests():
    bugs = load_plant_bugs().BUGS
    assert len({b.name for b in bugs}) == len(bugs) >= 20
    for bug in bugs:
        assert (REPO / bug.path).read_text(encoding="utf-8").count(bug.old) == 1, bug.name
        assert bug.old != bug.new and bug.tests, bug.name
        for test in bug.tests:
            path, _, name = test.partition("::")
            text = (REPO / path).read_text(encoding="utf-8")
            assert not name or f"def {name}(" in text, (bug.name, test)
