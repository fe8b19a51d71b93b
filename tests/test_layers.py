"""The layering of the package: no import cycle, and the NumPy reference without the compiled engine."""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import fastmlp

PACKAGE = Path(fastmlp.__file__).resolve().parent


def _import_time_edges(path, module):
    """The fastmlp modules that `module` imports when it is imported: its top-level imports, not those in functions."""
    package = "fastmlp"
    edges = set()
    for node in ast.parse(path.read_text()).body:  # module level only: a function's import runs later
        if isinstance(node, ast.Import):
            edges |= {a.name for a in node.names if a.name.startswith(package + ".")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else None
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            if target == package:  # `from . import x`: the submodules x
                edges |= {f"{package}.{a.name}" for a in node.names}
            elif target and target.startswith(package + "."):
                edges.add(target)
    return edges


def _graph():
    modules = {f"fastmlp.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {m: _import_time_edges(p, m) & set(modules) for m, p in modules.items()}


def _cycle(graph):
    """A list of modules that import each other in a loop, or None."""
    done, path = set(), []

    def visit(m):
        if m in path:
            return path[path.index(m):] + [m]
        if m in done:
            return None
        path.append(m)
        for n in sorted(graph[m]):
            found = visit(n)
            if found:
                return found
        path.pop()
        done.add(m)
        return None

    return next(filter(None, map(visit, sorted(graph))), None)


def test_no_import_cycle_among_the_modules():
    graph = _graph()
    # the walk is not vacuous: it sees the reference's imports, the math is a leaf
    assert graph["fastmlp.reference"] >= {"fastmlp._registry", "fastmlp._base", "fastmlp._math"}
    assert graph["fastmlp._math"] == set()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle(dict(graph, **{"fastmlp._math": {"fastmlp.reference"}})) is not None  # it finds one


def test_reference_imports_and_trains_with_the_engine_blocked():
    code = textwrap.dedent("""
        import sys
        sys.modules["fastmlp._engine"] = None  # `import fastmlp._engine` now raises ImportError
        import numpy as np
        from fastmlp import reference
        try:
            import fastmlp._engine
        except ImportError:
            pass
        else:
            raise SystemExit("the engine was not blocked")
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 3))
        Y = X @ np.array([[1.0], [-1.0], [0.5]])
        net = reference.Network([3, 6, 1], random_state=0)
        net.fit(X, Y, epochs=5, batch_size=8, optimizer="adam", learning_rate=0.01)
        assert len(net.loss_curve_) == 5 and net.loss_curve_[-1] < net.loss_curve_[0]
        assert not any(m.startswith("fastmlp._engine") for m in sys.modules if sys.modules[m] is not None)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
