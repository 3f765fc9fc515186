"""The layering rules of docs/architecture.md, checked on the source."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "edgesim"

#: Level of every module (docs/architecture.md): a module imports only from lower levels.
LEVELS = {"config": 0, "seeding": 0, "linalg": 0, "network": 0, "history": 0, "edgelaws": 0, "nonlinear": 1.5,
          "physics": 1, "scenario": 1, "rules": 1,
          "hardware": 1, "control": 1, "chip": 1, "solvers": 2, "tasks": 2, "measure": 2, "damage": 2, "trainer": 3, "engine": 3, "build": 3,
          "results": 3, "runner": 4, "sweep": 5, "streaming": 5, "reproduce": 6, "cli": 7, "analysis": 4, "reference": 0}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) == 1:
            continue
        yield parts, path


def edgesim_imports(parts, path):
    """Top-level edgesim modules imported by a module (engine submodules count as 'engine')."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:-1])[:len(parts) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from .. import x" at the top: x is a module
                    target = [a.name for a in node.names][:1]
            elif node.module and node.module.split(".")[0] == "edgesim":
                target = node.module.split(".")[1:]
            else:
                continue
            if target and not target[0].startswith("__"):
                found.add(target[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("edgesim."))
    return found


def test_every_module_has_a_level():
    names = {parts[0] for parts, _ in modules()}
    assert names == set(LEVELS)


@pytest.mark.parametrize("parts, path", list(modules()), ids=lambda v: "/".join(v) if isinstance(v, tuple) else "")
def test_modules_import_only_from_lower_levels(parts, path):
    me = parts[0]
    for other in edgesim_imports(parts, path) - {me}:
        assert LEVELS[other] < LEVELS[me], f"{'/'.join(parts)} (level {LEVELS[me]}) imports {other} " \
                                           f"(level {LEVELS[other]})"


def test_the_engine_imports_nothing_from_the_trainer():
    for parts, path in modules():
        if parts[0] == "engine":
            assert "trainer" not in edgesim_imports(parts, path), path


PRIVATE = re.compile(r"\b(?!self\b|cls\b)([A-Za-z_][A-Za-z0-9_]*)\._[A-Za-z][A-Za-z0-9_]*")


@pytest.mark.parametrize("parts, path", list(modules()), ids=lambda v: "/".join(v) if isinstance(v, tuple) else "")
def test_no_module_reads_private_attributes_of_other_objects(parts, path):
    code = [line.split("#")[0] for line in path.read_text().splitlines()]
    strings_stripped = [re.sub(r"(\"[^\"]*\"|'[^']*')", "", line) for line in code]
    offending = [(i + 1, line.strip()) for i, line in enumerate(strings_stripped)
                 if PRIVATE.search(line) and not re.search(r"\b_?os\._|\bnp\._", line)]
    assert not offending, offending


def test_the_engine_names_no_solver_class_or_factorization():
    for parts, path in modules():
        if parts[0] == "engine":
            tree = ast.parse(path.read_text())
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
            for name in ("LowRankEquilibrium", "solve_last", "constraint_matrix", "gauge_mask", "splu", "dposv"):
                assert name not in names, f"{path.name} uses {name}"
