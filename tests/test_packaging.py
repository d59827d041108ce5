"""Packaging: pyproject and environment.yml agree; the console script and `python -m` both run."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest  # noqa: E402
from conftest import REPO

pytestmark = pytest.mark.integration


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    listed = set()
    text = (REPO / "environment.yml").read_text().split("\ndependencies:", 1)[1]
    for line in text.splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) != "python":
            listed.add(_name(m.group(1)))
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in yml: {listed - wanted}"


def test_console_script_and_module_both_run():
    script = Path(sys.executable).with_name("qdash")
    for cmd in ([str(script), "--help"], [sys.executable, "-m", "qdash", "--help"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        for command in ("load", "bars", "info"):
            assert command in out.stdout


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    lines = [ln for ln in (REPO / ".ci/run").read_text().splitlines()
             if ln.strip() and not ln.startswith(("#", "set ", "cd "))]
    assert lines, ".ci/run runs nothing"
    for line in lines:
        assert line in readme
    first_blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)[:2]
    assert lines[-1] == first_blocks[1], "the README's second command must be what CI runs"
