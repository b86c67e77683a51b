"""A fresh clone can deploy: the venv Pulumi builds from requirements.txt runs the program.

Pulumi.yaml picks the pip toolchain with `virtualenv: .venv`. When that venv is missing,
Pulumi's language host runs (pulumi/pulumi, sdk/python/toolchain/pip.go, InstallDependencies):

    python3 -m venv <root>/.venv
    <root>/.venv/bin/python -m pip install --upgrade pip setuptools wheel
    <root>/.venv/bin/python -m pip install -r requirements.txt      (in the project root)

with the venv activated (toolchain.go, ActivateVirtualEnv: its bin/ first on PATH,
VIRTUAL_ENV set, PYTHONHOME dropped). It then runs the program with the venv's python
through its exec shim, which changes to the project root and calls runpy.run_path(".").
This module does the same in a temporary directory, then runs tests/support/program_runner.py (the
shim's steps, under Pulumi's mocks) with that python.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

from lambda_pkg.profiles import PipelineConfig, load_named
from pipeline.program import stack
from pipeline.program.names import resource_names
from tests.support import REPO
from tests.support.layers import layer_zip
from tests.support.program_runner import PROJECT, mock_arn, mock_url, physical
from tests.support.pulumi_program import (
    FUNCTION,
    TOPIC,
    run_main,
)

pytestmark = pytest.mark.usefixtures("fake_layer")

RUNNER = REPO / "tests" / "support" / "program_runner.py"
REQUIREMENTS = REPO / "requirements.txt"
STACK_NAME = "prod"
CONFIG = {"profile": "web", "architecture": "x86_64", "memory": "2048"}


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (
        f"`{' '.join(command)}` exited {result.returncode}:\n{result.stderr[-6000:]}"
    )
    return result


def activated(venv: Path) -> dict[str, str]:
    """The environment Pulumi gives the venv's processes (ActivateVirtualEnv)."""
    # PYTHONPATH is dropped too (Pulumi keeps it): nothing from the developer's tree may leak in.
    dropped = {"PYTHONHOME", "VIRTUAL_ENV", "PYTHONPATH"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """Pulumi's venv steps, then the program run in it; returns the run, checked by each test."""
    work = tmp_path_factory.mktemp("deploy-venv")
    venv = work / ".venv"
    env, python = activated(venv), str(venv / "bin" / "python")
    # Pulumi creates it with the first `python3` on PATH; here, the interpreter of the tests.
    run([sys.executable, "-m", "venv", str(venv)])
    run(
        [python, "-m", "pip", "install", "--upgrade", "pip", "setuptools", "wheel"],
        cwd=REPO,
        env=env,
    )
    run([python, "-m", "pip", "install", "-r", "requirements.txt"], cwd=REPO, env=env)
    runner = str(shutil.copy(RUNNER, work))  # the shim lives outside the project too
    # A prebuilt layer (imgpipe:layerZip), as a user without pip access at deploy would
    # set: the real pip build is slow, networked and tested on its own in test_layer.py.
    layer = layer_zip(work / "layer.zip", architecture=CONFIG["architecture"])
    config = json.dumps(
        {f"imgpipe:{key}": value for key, value in {**CONFIG, "layerZip": str(layer)}.items()}
    )
    return subprocess.run(
        [python, runner, STACK_NAME, str(work)],
        cwd=REPO,
        env={**env, "PULUMI_CONFIG": config},
        capture_output=True,
        text=True,
        check=False,
    )


def result_of(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert process.returncode == 0, (
        f"the program failed in a venv built from requirements.txt alone "
        f"(exit {process.returncode}):\n{process.stderr[-6000:]}"
    )
    work = Path(process.args[-1])
    return json.loads((work / "result.json").read_text())


def test_the_program_deploys_from_requirements_txt_alone(
    deployed: subprocess.CompletedProcess[str],
) -> None:
    result = result_of(deployed)
    names = resource_names(PROJECT, STACK_NAME)
    dlq = physical(names.dead_letter_queue)
    (topic,) = [r for r in result["resources"] if r["type"] == TOPIC]
    assert result["outputs"] == {
        stack.OUTPUT_INPUT_BUCKET: physical(names.input_bucket),
        stack.OUTPUT_OUTPUT_BUCKET: physical(names.output_bucket),
        stack.OUTPUT_METADATA_TABLE: physical(names.metadata_table),
        stack.OUTPUT_FUNCTION_NAME: physical(names.function),
        stack.OUTPUT_DEAD_LETTER_QUEUE: mock_url(dlq),
        stack.OUTPUT_DEAD_LETTER_QUEUE_ARN: mock_arn(dlq),
        stack.OUTPUT_ALARM_TOPIC: mock_arn(physical(topic["name"])),
        stack.OUTPUT_EVENT_BUS: physical(names.event_bus),
        stack.OUTPUT_EVENT_BUS_ARN: mock_arn(physical(names.event_bus)),
    }
    # The same resources as the program registers in the development venv, with the same
    # config: nothing it does depends on a package only the development venv has.
    in_dev_venv = run_main(config=CONFIG, stack=STACK_NAME).resources.values()
    registered = sorted((r["type"], r["name"]) for r in result["resources"])
    assert registered == sorted((r.typ, r.name) for r in in_dev_venv)
    # The stack config reached the program through PULUMI_CONFIG, as Pulumi passes it.
    (function,) = [r["inputs"] for r in result["resources"] if r["type"] == FUNCTION]
    assert (function["architectures"], function["memorySize"]) == (["x86_64"], 2048)
    profile_config = function["environment"]["variables"]["PROFILE_CONFIG"]
    assert PipelineConfig.from_json(profile_config) == PipelineConfig.single(load_named("web"))


def test_requirements_txt_pins_exactly_the_packages_the_program_imports(
    deployed: subprocess.CompletedProcess[str],
) -> None:
    # Pulumi itself depends on PyYAML, so a missing pin would still deploy today: this catches
    # it (and a pin the program never imports, such as Pillow) before an upgrade drops it.
    files = result_of(deployed)["project_files"]
    importers: dict[str, set[str]] = {}
    for file, module in third_party_imports(files):
        for distribution in packages_distributions().get(module, [module]):
            importers.setdefault(canonical(distribution), set()).add(f"{module} in {file}")
    pinned = pins(REQUIREMENTS)
    missing = {name: sorted(where) for name, where in importers.items() if name not in pinned}
    assert not missing, f"imported by the program but not pinned in requirements.txt: {missing}"
    unused = sorted(set(pinned) - set(importers))
    assert not unused, f"pinned in requirements.txt but never imported by the program: {unused}"


def third_party_imports(files: Iterable[str]) -> set[tuple[str, str]]:
    """(file, top-level module) for every absolute import outside the stdlib and the project."""
    found = set()
    for file in files:
        tree = ast.parse((REPO / file).read_text(encoding="utf-8"), file)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {module.partition(".")[0] for module in modules}:
                ours = (REPO / top).is_dir() or (REPO / f"{top}.py").is_file()
                if top not in sys.stdlib_module_names and not ours:
                    found.add((file, top))
    return found


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file where every line is `name==version`."""
    result = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.partition("#")[0].strip()
        if not requirement:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", requirement)
        assert match, f"{path.name}: {requirement!r} is not an exact pin (name==version)"
        result[canonical(match[1])] = match[2]
    return result


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
