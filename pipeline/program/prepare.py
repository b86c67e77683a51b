"""What the program does before the component exists: build and check the artifacts.

`__main__.py` calls `artifacts()` after the settings parsed and the component's checks
(`component.validate`) passed, and hands the paths to the component, which only registers
resources. The pip build can take minutes and fail for reasons of its own (no package
index); doing it here keeps it out of the constructor and before any registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from pipeline.program.artifacts import (
    ArtifactError,
    build_function_zip,
    build_layer,
    bytecode_note,
    check_prebuilt_layer,
)
from pipeline.program.guards import check_artifacts_fit
from pipeline.program.stack import StackSettings


@dataclass(frozen=True)
class Artifacts:
    """What the function is made of, built and checked before any resource is registered."""

    function_zip: Path
    layer_zip: Path | None  # None: the stack attaches `layer_arn` instead
    layer_arn: str | None = None


def artifacts(settings: StackSettings) -> Artifacts:
    """The function zip and the layer (built, or a prebuilt one checked), as paths.

    A failure here (pip unable to reach an index, a layer for the wrong platform, artifacts
    over Lambda's limits) raises with nothing created, with or without `pulumi preview`.
    """
    note = bytecode_note(settings.runtime)
    if note:
        pulumi.log.warn(f"imgpipe: {note}")  # a slower cold start, not a failure
    function_zip = build_function_zip(runtime=settings.runtime)
    if settings.layer_arn:
        check_layer_version(settings.layer_arn, settings.runtime, settings.architecture)
        return Artifacts(function_zip, None, settings.layer_arn)
    if settings.layer_zip:
        layer_zip = settings.layer_zip
        check_prebuilt_layer(layer_zip, settings.runtime, settings.architecture)
    else:
        try:
            layer_zip = build_layer(settings.runtime, settings.architecture)
        except ArtifactError as exc:
            raise ArtifactError(
                f"{exc}\n\nNothing was created. Deploying builds the Pillow layer with pip, "
                "which needs a package index. Without one, build the layer where there is "
                f"one (`imgpipe build-layer --arch {settings.architecture} --python "
                f"{settings.runtime.removeprefix('python')}`) and set imgpipe:layerZip to "
                "the zip, or set imgpipe:layerArn to a published layer version."
            ) from None
    check_artifacts_fit(layer_zip, function_zip)
    return Artifacts(function_zip, layer_zip)


def check_layer_version(arn: str, runtime: str, architecture: str) -> None:
    """Ask Lambda about a prebuilt layer version; refuse one declared for another platform.

    A synchronous invoke, so the answer arrives before any resource is registered. A layer
    that declares no runtimes or architectures cannot be checked and is accepted.
    """
    # Lambda attaches layers from the function's own region only.
    region = aws.get_region().region
    layer_region = arn.split(":")[3]
    if region and layer_region != region:
        raise ArtifactError(
            f"imgpipe:layerArn: {arn} is in {layer_region}, but the stack deploys to {region} "
            "(aws:region); Lambda attaches layers from the function's region only: publish "
            "the layer there"
        )
    try:
        found = aws.lambda_.get_layer_version(layer_version_arn=arn)
    except Exception as exc:  # the provider's message says why (missing, not shared, ...)
        raise ArtifactError(
            f"imgpipe:layerArn: cannot read layer version {arn}: {exc}. Nothing was created."
        ) from exc
    runtimes = list(found.compatible_runtimes or [])
    architectures = list(found.compatible_architectures or [])
    if runtimes and runtime not in runtimes:
        raise ArtifactError(
            f"imgpipe:layerArn: {arn} declares runtimes {', '.join(runtimes)}, not {runtime} "
            "(imgpipe:runtime); publish it for that runtime or change imgpipe:runtime"
        )
    if architectures and architecture not in architectures:
        raise ArtifactError(
            f"imgpipe:layerArn: {arn} declares architectures {', '.join(architectures)}, not "
            f"{architecture} (imgpipe:architecture)"
        )
    if not runtimes or not architectures:
        pulumi.log.warn(
            f"imgpipe:layerArn: {arn} declares no compatible runtimes or architectures; "
            f"make sure it was built for {runtime} on {architecture}"
        )
