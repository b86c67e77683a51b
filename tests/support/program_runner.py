"""Run the Pulumi program as Pulumi's language host does, but against Pulumi's mocks.

tests/end_to_end/test_deploy_venv.py runs this file with the python of a venv built from the root
requirements.txt alone, so it may import only the standard library and `pulumi`.

    python program_runner.py <stack> <work dir>

What it copies from Pulumi's exec shim (sdk/python/cmd/pulumi-language-python-exec): the
stack config comes from the PULUMI_CONFIG environment variable (JSON), the working
directory is the project root, and the program is `runpy.run_path(".", run_name="__main__")`.
What it writes: <work dir>/result.json with every registered resource, the stack outputs and
the project's source files the program loaded (what its imports are read from).
Any exception (a missing import among them) ends the process with a traceback on stderr.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime

PROJECT = "imgpipe"
PHYSICAL_SUFFIX = "-mock123"
ACCOUNT = "123456789012"
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"


def physical(logical: str) -> str:
    return logical + PHYSICAL_SUFFIX


def mock_arn(physical_name: str) -> str:
    return f"arn:mock:{physical_name}"


def mock_url(physical_name: str) -> str:
    return f"https://mock/{physical_name}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers every resource with the attributes stack outputs read; records what was asked."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
        name = physical(args.name)
        attributes = {"name": name, "bucket": name, "arn": mock_arn(name), "url": mock_url(name)}
        return name, {**attributes, **args.inputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == CALLER_IDENTITY:
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "id": ACCOUNT}
        raise NotImplementedError(f"unexpected invoke {args.token}")


def main(stack: str, work_dir: Path) -> None:
    runtime = pulumi.runtime
    runtime.set_all_config(runtime.get_config_env(), runtime.get_config_secret_keys_env())
    mocks = RecordingMocks()
    runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    result: dict[str, Any] = {}

    def program() -> pulumi.Output:
        runpy.run_path(".", run_name="__main__")
        outputs = runtime.get_root_resource().outputs
        return pulumi.Output.all(**outputs).apply(lambda values: result.update(outputs=values))

    runtime.test(program)()
    result["resources"] = mocks.resources
    result["project_files"] = project_files(Path.cwd().resolve())
    (work_dir / "result.json").write_text(json.dumps(result, indent=1, default=repr))


def project_files(root: Path) -> list[str]:
    """The project's own source files loaded so far, `__main__.py` (run, not imported) too."""
    files = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    loaded = {Path(file).resolve() for file in files if file}
    ours = [p for p in loaded if p.is_relative_to(root) and "site-packages" not in p.parts]
    return sorted({"__main__.py", *(p.relative_to(root).as_posix() for p in ours)})


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
