"""The project's set-up promises: one dependency list, the README's commands, quiet imports.

- ``environment.yml`` (conda) pins the same packages as ``pyproject.toml``;
- the README's two Quick-start commands are exactly what ``.ci/run`` runs;
- ``docs/data_dictionary.md`` is the rendering of the data contract;
- ``import crm_analysis`` prints nothing, warns about nothing, reads no project
  file and leaves matplotlib and logging as it found them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
README = PROJECT_ROOT / "README.md"
CI_RUN = PROJECT_ROOT / ".ci" / "run"
DATA_DICTIONARY = PROJECT_ROOT / "docs" / "data_dictionary.md"

#: Conda dependencies that are not PyPI packages of the project.
CONDA_ONLY = {"python", "pip", "pango", "harfbuzz"}


def _requirements(lines: list[str], where: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """``{normalised name: (extras, specifiers)}``; a name listed twice is an error."""
    out = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in out, f"{where} lists {req.name} twice"
        out[name] = (frozenset(req.extras), frozenset(str(s) for s in req.specifier))
    return out


def _show(reqs: dict, name: str) -> str:
    if name not in reqs:
        return "(absent)"
    extras, specs = reqs[name]
    return (f"[{','.join(sorted(extras))}]" if extras else "") + (",".join(sorted(specs)) or "(any version)")


def test_environment_yml_pins_the_same_packages_as_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["test"],
                           "pyproject.toml (dependencies + test extra)")

    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert "conda-forge" in env["channels"]
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += [line for line in dep["pip"] if not line.startswith("-")]  # skip "-e ." and options
        else:
            conda.append(dep)
    assert "python=3.11" in conda, "environment.yml must ask for python=3.11"
    listed = _requirements(pip + [d for d in conda if re.split(r"[\s=<>!~]", d)[0] not in CONDA_ONLY],
                           "environment.yml")

    diff = [f"  {name}: pyproject.toml {_show(wanted, name)} | environment.yml {_show(listed, name)}"
            for name in sorted(set(wanted) | set(listed)) if wanted.get(name) != listed.get(name)]
    assert not diff, "environment.yml and pyproject.toml disagree:\n" + "\n".join(diff)


def _quick_start_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"^```[a-z]*\n(.*?)^```", section.group(1), flags=re.M | re.S)
    assert block, "README.md's Quick start has no fenced code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readme_quick_start_commands_verbatim():
    commands = _quick_start_commands()
    assert len(commands) == 2, f"the Quick start should be two commands, one per line; found {commands}"
    ci_lines = CI_RUN.read_text(encoding="utf-8").splitlines()
    for command in commands:
        assert command in ci_lines, f".ci/run does not run this README line exactly as written:\n  {command}"
    assert ci_lines.index(commands[0]) < ci_lines.index(commands[1]), ".ci/run must run the set-up before the tests"


@pytest.mark.parametrize("script", [".ci/run", ".ci/postgres.sh"])
def test_ci_scripts_are_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(PROJECT_ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_data_dictionary_is_rendered_from_the_contract():
    from crm_analysis.contract import render_data_dictionary

    assert DATA_DICTIONARY.exists(), "docs/data_dictionary.md is missing"
    assert DATA_DICTIONARY.read_text(encoding="utf-8") == render_data_dictionary(), (
        "docs/data_dictionary.md is out of date with crm_analysis/contract.py; regenerate it with\n"
        "  .venv/bin/crm-analysis data-dictionary --out docs/data_dictionary.md"
    )


def test_import_is_silent_even_with_warnings_as_errors(tmp_path):
    result = subprocess.run([sys.executable, "-W", "error", "-c", "import crm_analysis"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}"


# Runs in a fresh interpreter: records every file opened under the project (outside the
# virtual environment, and other than Python source), and compares matplotlib's settings
# and the root logger before and after the import.
_IMPORT_PROBE = r"""
import json, logging, os, sys

root, prefix = os.path.realpath(sys.argv[1]), os.path.realpath(sys.prefix)
opened = []

def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        opened.append(args[0])

import matplotlib
rc_before = {k: repr(v) for k, v in matplotlib.rcParams.items()}
handlers_before = list(logging.getLogger().handlers)
sys.addaudithook(hook)

import crm_analysis

files = sorted({p for p in map(os.path.realpath, map(os.fsdecode, opened))
                if p.startswith(root + os.sep) and not p.startswith(prefix + os.sep)
                and not p.endswith((".py", ".pyc"))})
rc_after = {k: repr(v) for k, v in matplotlib.rcParams.items()}
print(json.dumps({
    "files": [os.path.relpath(p, root) for p in files],
    "rcparams": sorted(k for k in rc_after if rc_after[k] != rc_before.get(k)),
    "logging": logging.getLogger().handlers != handlers_before,
}))
"""


def test_import_reads_no_project_file_and_changes_no_settings(tmp_path):
    result = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, str(PROJECT_ROOT)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["files"] == [], f"import crm_analysis opened project files: {found['files']}"
    assert found["rcparams"] == [], f"import crm_analysis changed matplotlib settings: {found['rcparams']}"
    assert not found["logging"], "import crm_analysis configured the root logger"


def test_readme_python_examples_run(demo_dir, tmp_path, monkeypatch):
    """The README's Python blocks run as written, on the demo clinic (files they write go to tmp_path)."""
    import re

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_ANALYSIS_ACCESS_LOG", str(tmp_path / "access.log"))

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        code = block.replace('"data/demo"', repr(str(demo_dir)))
        exec(compile(code, "README.md", "exec"), {})
