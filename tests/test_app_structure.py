"""The dashboard's package stays a model and a view: small classes and files, a model with no
widget library in its imports, and no feed probed with getattr/hasattr outside ``qdash/feeds``."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

QDASH = Path(__file__).resolve().parents[1] / "qdash"
MAX_METHODS = 40
MAX_LINES = 450


def _app_files():
    files = sorted((QDASH / "app").glob("*.py"))
    assert len(files) > 5
    return files


def test_no_class_of_the_dashboard_package_has_more_than_40_methods():
    big = {}
    for path in _app_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body
                           if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
                if len(methods) > MAX_METHODS:
                    big[f"{path.name}:{node.name}"] = len(methods)
    assert not big, f"classes with more than {MAX_METHODS} methods: {big}"


def test_no_file_of_the_dashboard_package_has_more_than_450_lines():
    long = {p.name: n for p in _app_files() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def _feed_probes(tree: ast.AST) -> list[int]:
    """Lines of ``getattr(<...feed...>, ...)`` / ``hasattr(<...feed...>, ...)``."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr") and node.args
                and "feed" in ast.unparse(node.args[0]).lower()):
            lines.append(node.lineno)
    return lines


def test_no_feed_is_probed_with_getattr_outside_the_feeds_package():
    probes = {}
    for path in QDASH.rglob("*.py"):
        if (QDASH / "feeds") in path.parents:
            continue
        found = _feed_probes(ast.parse(path.read_text()))
        if found:
            probes[str(path.relative_to(QDASH))] = found
    assert not probes, f"feeds probed (declare it on TickFeed instead): {probes}"
    assert _feed_probes(ast.parse("getattr(self.feed, 'rest_url', None)"))  # the check works


def test_the_monitor_imports_no_widget_or_plot_library():
    code = ("import sys\nimport qdash.app.monitor\nimport qdash.app\nqdash.app.PairMonitor\n"
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'\n"
            "assert 'bokeh' not in sys.modules, 'bokeh imported'\n"
            "import qdash.app.dashboard\nassert 'ipywidgets' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
