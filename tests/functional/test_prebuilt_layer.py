"""Deploying without a package index: a prebuilt layer zip or layer version, checked for the
stack's platform, and a failed layer build that registers nothing.

Nothing here reaches PyPI: zips are made by hand with the parts the checks read (wheel
tags, extension module names, ELF headers), and the failing build points pip at a closed
port.
"""

from __future__ import annotations

import functools
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from pipeline.cli import commands as cli
from pipeline.program import artifacts as layer
from pipeline.program import prepare
from pipeline.program.artifacts import ArtifactError, check_prebuilt_layer
from pipeline.program.names import resource_names
from pipeline.program.stack import StackSettings
from tests.support.layers import PINNED, elf_header, layer_zip
from tests.support.pulumi_program import (
    FUNCTION,
    LAYER,
    REPO,
    PipelineMocks,
    image_pipeline,
    run_program,
)

GET_LAYER_VERSION = "aws:lambda/getLayerVersion:getLayerVersion"
GET_REGION = "aws:index/getRegion:getRegion"
LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:pillow-arm64:7"


# -- the zip checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "architecture"),
    [("python3.12", "arm64"), ("python3.12", "x86_64"), ("python3.13", "arm64")],
)
def test_a_layer_built_for_the_stack_passes(
    tmp_path: Path, runtime: str, architecture: str
) -> None:
    python = runtime.removeprefix("python").replace(".", "")
    path = layer_zip(tmp_path / "layer.zip", architecture, python)
    assert check_prebuilt_layer(path, runtime, architecture) > 0


def test_pure_python_and_stable_abi_wheels_pass(tmp_path: Path) -> None:
    pure = "Wheel-Version: 1.0\nTag: py3-none-any\n"
    abi3 = "Wheel-Version: 1.0\nTag: cp38-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64\n"
    path = layer_zip(
        tmp_path / "layer.zip",
        extra={
            "python/yaml-6.0.dist-info/WHEEL": pure.encode(),
            "python/cffi-1.0.dist-info/WHEEL": abi3.encode(),
        },
    )
    check_prebuilt_layer(path, "python3.12", "arm64")


@pytest.mark.parametrize(
    ("build", "runtime", "architecture", "reason"),
    [
        (
            {"architecture": "x86_64"},
            "python3.12",
            "arm64",
            "built for cp312-cp312-manylinux_2_28_x",
        ),
        ({"python": "313"}, "python3.12", "arm64", "CPython 313 aarch64 module"),
        (
            {"tags": ("cp312-cp312-musllinux_1_2_aarch64",)},
            "python3.12",
            "arm64",
            "musllinux_1_2_aarch64",
        ),
        (
            {"tags": ("cp312-cp312-manylinux_2_39_aarch64",)},
            "python3.12",
            "arm64",
            "manylinux_2_39",  # newer glibc than Amazon Linux 2023's 2.34
        ),
        (
            {"extra": {"PIL/__init__.py": b""}},
            "python3.12",
            "arm64",
            "PIL/__init__.py is not under python/",
        ),
        (
            {"extra": {"python/lib/libfoo.so.1": elf_header("x86_64")}},
            "python3.12",
            "arm64",
            "libfoo.so.1 is compiled for ELF machine 62",
        ),
        (
            {"python": "313t", "tags": ("cp313-cp313t-manylinux_2_28_aarch64",)},
            "python3.13",
            "arm64",
            "is built for cp313-cp313t-manylinux_2_28_aarch64",  # free-threaded CPython
        ),
        (
            {"extra": {"python/PIL/_webp.so": b"\xcf\xfa\xed\xfe" + b"\0" * 28}},
            "python3.12",
            "arm64",
            "python/PIL/_webp.so is not a Linux shared object",
        ),
        ({"tags": ("py3-none",)}, "python3.12", "arm64", "is built for py3-none"),
        (
            {"versions": {"pillow": "13.0.0"}},
            "python3.12",
            "arm64",
            "it has no pillow_heif (requirements/layer.txt pins 1.8.1)",
        ),
        (
            {"versions": {**PINNED, "pillow": "12.2.0"}},
            "python3.12",
            "arm64",
            "it has pillow 12.2.0; requirements/layer.txt pins 13.0.0",
        ),
        (
            {"root": "python/lib/python3.11/site-packages/"},
            "python3.12",
            "arm64",
            "is not on python3.12's path (python/lib/python3.12/site-packages/)",
        ),
    ],
    ids=[
        "other-arch",
        "other-python",
        "musl",
        "newer-glibc",
        "not-under-python",
        "foreign-elf",
        "free-threaded",
        "mach-o",
        "not-a-tag",
        "missing-distribution",
        "other-version",
        "other-pythons-site-packages",
    ],
)
def test_a_layer_for_another_platform_is_refused_with_the_reason(
    tmp_path: Path, build: dict, runtime: str, architecture: str, reason: str
) -> None:
    path = layer_zip(tmp_path / "layer.zip", **build)
    with pytest.raises(ArtifactError) as caught:
        check_prebuilt_layer(path, runtime, architecture)
    message = str(caught.value)
    assert message.startswith(f"imgpipe:layerZip: {path} cannot serve a {runtime} {architecture}")
    assert reason in message
    assert f"imgpipe build-layer --arch {architecture} --python 3.1" in message


def test_the_site_packages_layout_for_the_runtime_passes(tmp_path: Path) -> None:
    path = layer_zip(tmp_path / "layer.zip", root="python/lib/python3.12/site-packages/")
    check_prebuilt_layer(path, "python3.12", "arm64")


def test_a_layer_lambda_would_refuse_to_upload_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = layer_zip(tmp_path / "layer.zip")
    monkeypatch.setattr(layer, "LAMBDA_DIRECT_UPLOAD_LIMIT", path.stat().st_size - 1)
    with pytest.raises(ArtifactError, match="Lambda accepts in a direct upload"):
        check_prebuilt_layer(path, "python3.12", "arm64")


def test_a_missing_or_broken_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="is not a file; build one with `imgpipe build-layer"):
        check_prebuilt_layer(tmp_path / "nope.zip", "python3.12", "arm64")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="is not a zip file"):
        check_prebuilt_layer(junk, "python3.12", "arm64")


# -- the program with imgpipe:layerZip / imgpipe:layerArn ----------------------------------


@dataclass
class LayerMocks(PipelineMocks):
    """Answers GetLayerVersion from `published`, as Lambda would for those ARNs."""

    published: dict[str, dict] = field(default_factory=dict)
    region: str = "eu-west-1"  # the provider's region (aws:region)

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == GET_REGION:
            self.calls.append(args.token)
            return {"region": self.region, "name": self.region, "id": self.region}
        if args.token != GET_LAYER_VERSION:
            return super().call(args)
        self.calls.append(args.token)
        arn = args.args["layerVersionArn"]
        if arn not in self.published:
            # How the engine reports a provider's failed invoke: (result, failures).
            return {}, [("layerVersionArn", f"ResourceNotFoundException: {arn} not found")]
        return {"layerVersionArn": arn, "arn": arn, **self.published[arn]}


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a prebuilt layer must not be built")

    monkeypatch.setattr(prepare, "build_layer", refuse)


def deploy(settings: StackSettings, mocks: PipelineMocks | None = None) -> PipelineMocks:
    config, names = settings.pipeline_config(), resource_names("imgpipe", "dev")
    return run_program(lambda: image_pipeline(config, settings, names), mocks=mocks)


def test_layer_zip_is_deployed_as_it_is_without_a_build(tmp_path: Path, no_build: None) -> None:
    path = layer_zip(tmp_path / "prebuilt.zip")
    mocks = deploy(StackSettings(layer_zip=path))
    version = mocks.one(LAYER)
    assert version.inputs["compatibleRuntimes"] == ["python3.12"]
    assert version.inputs["compatibleArchitectures"] == ["arm64"]
    assert "prebuilt.zip" in version.inputs["description"]
    assert mocks.one(FUNCTION).inputs["layers"] == [version.outputs["arn"]]


def test_layer_arn_is_attached_after_lambda_confirms_its_platform(no_build: None) -> None:
    mocks = LayerMocks(
        published={
            LAYER_ARN: {"compatibleRuntimes": ["python3.12"], "compatibleArchitectures": ["arm64"]}
        }
    )
    deploy(StackSettings(layer_arn=LAYER_ARN), mocks)
    assert mocks.of_type(LAYER) == []  # the stack publishes no layer of its own
    assert mocks.one(FUNCTION).inputs["layers"] == [LAYER_ARN]
    assert GET_LAYER_VERSION in mocks.calls


@pytest.mark.parametrize(
    ("published", "match"),
    [
        ({}, "cannot read layer version .* not found"),
        (
            {LAYER_ARN: {"compatibleRuntimes": ["python3.13"], "compatibleArchitectures": []}},
            "declares runtimes python3.13, not python3.12",
        ),
        (
            {LAYER_ARN: {"compatibleRuntimes": [], "compatibleArchitectures": ["x86_64"]}},
            "declares architectures x86_64, not arm64",
        ),
    ],
    ids=["missing", "other-runtime", "other-arch"],
)
def test_a_layer_arn_lambda_cannot_confirm_registers_nothing(
    published: dict, match: str, no_build: None
) -> None:
    mocks = LayerMocks(published=published)
    with pytest.raises(ArtifactError, match=match):
        deploy(StackSettings(layer_arn=LAYER_ARN), mocks)
    assert mocks.resources == {}


def test_a_layer_arn_from_another_region_registers_nothing(no_build: None) -> None:
    platform = {"compatibleRuntimes": ["python3.12"], "compatibleArchitectures": ["arm64"]}
    mocks = LayerMocks(published={LAYER_ARN: platform}, region="us-east-1")
    match = "is in eu-west-1, but the stack deploys to us-east-1"
    with pytest.raises(ArtifactError, match=match):
        deploy(StackSettings(layer_arn=LAYER_ARN), mocks)
    assert mocks.resources == {}


def test_a_layer_zip_for_another_platform_registers_nothing(tmp_path: Path) -> None:
    path = layer_zip(tmp_path / "x86.zip", architecture="x86_64")
    mocks = PipelineMocks()
    with pytest.raises(ArtifactError, match=r"cannot serve a python3\.12 arm64 function"):
        deploy(StackSettings(layer_zip=path), mocks)
    assert mocks.resources == {}


# -- a failed build creates nothing --------------------------------------------------------


@pytest.fixture
def unreachable_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip with no index it can reach, no cache, no user config; an empty build cache."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    cache = tmp_path / "empty-build-cache"
    monkeypatch.setattr(
        prepare, "build_layer", functools.partial(layer.build_layer, cache_dir=cache)
    )
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up-skip-preview"])
def test_a_failed_layer_build_registers_nothing(unreachable_index: Path, preview: bool) -> None:
    mocks = PipelineMocks()

    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    with pytest.raises(ArtifactError) as caught:
        run_program(program, mocks=mocks, preview=preview)
    message = str(caught.value)
    assert "pip could not build the layer for python3.12-arm64" in message
    assert "Nothing was created" in message
    assert "imgpipe build-layer --arch arm64 --python 3.12" in message
    assert "imgpipe:layerZip" in message and "imgpipe:layerArn" in message
    assert mocks.resources == {}  # not even the component
    assert not list(unreachable_index.glob("*.zip"))


# -- imgpipe build-layer ------------------------------------------------------------------


def test_build_layer_command_writes_a_checked_zip_and_says_how_to_use_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    requested = []

    def build(runtime: str, architecture: str) -> Path:
        requested.append((runtime, architecture))
        python = runtime.removeprefix("python").replace(".", "")
        return layer_zip(tmp_path / "cache.zip", architecture, python)

    monkeypatch.setattr(cli, "build_layer", build)
    output = tmp_path / "out" / "layer.zip"
    argv = ["build-layer", "--arch", "x86_64", "--python", "3.13", "--output", str(output)]
    assert cli.main(argv) == 0
    assert requested == [("python3.13", "x86_64")]
    assert output.read_bytes() == (tmp_path / "cache.zip").read_bytes()
    assert f"pulumi config set imgpipe:layerZip {output.resolve()}" in capsys.readouterr().out
    # A directory gets the default file name inside it.
    assert cli.main([*argv[:-1], str(output.parent)]) == 0
    assert (output.parent / "pillow-python3.13-x86_64.zip").is_file()


def test_build_layer_command_refuses_a_runtime_lambda_cannot_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["build-layer", "--python", "3.11"])
    assert "invalid choice: '3.11'" in capsys.readouterr().err


def test_a_build_without_bytecode_is_announced_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no interpreter of the runtime's version on this machine
    said: list[str] = []
    monkeypatch.setattr(prepare, "bytecode_note", lambda runtime: f"no {runtime} found")
    monkeypatch.setattr(prepare.pulumi.log, "warn", said.append)
    # WHEN the program builds its artifacts THEN it says so in one line, and goes on
    built = prepare.artifacts(StackSettings(layer_zip=layer_zip(tmp_path / "prebuilt.zip")))
    assert said == ["imgpipe: no python3.12 found"]
    assert built.function_zip.is_file()
