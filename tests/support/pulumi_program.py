"""Pulumi's mocks for the program's tests: every registration recorded, run like the engine.

The mocks record every registration (type, name, inputs, the outputs they answered with,
and from the monitor the URN, parent and dependencies), so assertions run after the
program has finished, on plain values. `image_pipeline` builds the component as
`__main__.py` does: checks, then the artifacts, then the component.
"""

from __future__ import annotations

import runpy
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor

from lambda_pkg.profiles import PipelineConfig, load_named
from pipeline.program import prepare
from pipeline.program.component import ImagePipeline, ImagePipelineArgs, validate
from pipeline.program.names import ResourceNames, resource_names
from pipeline.program.stack import StackSettings
from tests.support import REPO

ACCOUNT = "123456789012"
REGION = "eu-west-1"
SUFFIX = "-a1b2c3d"  # what Pulumi's autonaming would append
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
TABLE = "aws:dynamodb/table:Table"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LAYER = "aws:lambda/layerVersion:LayerVersion"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
QUEUE = "aws:sqs/queue:Queue"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
RECURSION = "aws:lambda/functionRecursionConfig:FunctionRecursionConfig"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
KMS_KEY = "aws:kms/key:Key"
EVENT_BUS = "aws:cloudwatch/eventBus:EventBus"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
EDGE_FUNCTION = "aws:cloudfront/function:Function"
ORIGIN_ACCESS = "aws:cloudfront/originAccessControl:OriginAccessControl"
CACHE_POLICY = "aws:cloudfront/cachePolicy:CachePolicy"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
CDN_DOMAIN = "d111111abcdef8.cloudfront.net"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    urn: str = ""
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class PipelineMocks(pulumi.runtime.Mocks):
    """Answers like AWS would (autonamed names, real-shaped ARNs) and records everything."""

    resources: dict[str, Registered] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs, physical = dict(args.inputs), args.name + SUFFIX
        outputs, resource_id = dict(inputs), f"{args.name}-id"
        if args.typ == BUCKET:
            outputs.update(bucket=physical, arn=f"arn:aws:s3:::{physical}")
            outputs.update(bucketRegionalDomainName=f"{physical}.s3.{REGION}.amazonaws.com")
            resource_id = physical  # a bucket's id is its name
        elif args.typ == TABLE:
            outputs.update(name=physical, arn=arn("dynamodb", f"table/{physical}"))
        elif args.typ == LOG_GROUP:
            name = inputs["namePrefix"] + "20250101000000000000000001"
            # pulumi-aws v7 strips the ":*" the API returns; so do the mocks.
            outputs.update(name=name, arn=arn("logs", f"log-group:{name}"))
        elif args.typ == LAYER:
            outputs.update(arn=arn("lambda", f"layer:{inputs['layerName']}:1"))
        elif args.typ == ROLE:
            outputs.update(name=physical, arn=f"arn:aws:iam::{ACCOUNT}:role/{physical}")
        elif args.typ == FUNCTION:
            outputs.update(name=physical, arn=arn("lambda", f"function:{physical}"))
        elif args.typ == QUEUE:
            url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
            outputs.update(name=physical, arn=arn("sqs", physical), url=url)
            resource_id = url  # a queue's id is its URL
        elif args.typ == TOPIC:
            outputs.update(name=physical, arn=arn("sns", physical))
        elif args.typ == KMS_KEY:
            key_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
            outputs.update(keyId=key_id, arn=arn("kms", f"key/{key_id}"))
            resource_id = key_id
        elif args.typ == EVENT_BUS:
            outputs.update(name=physical, arn=arn("events", f"event-bus/{physical}"))
        elif args.typ == ALARM:
            outputs.update(name=physical, arn=arn("cloudwatch", f"alarm:{physical}"))
        elif args.typ == DISTRIBUTION:
            resource_id = "E2QWRUHAPOMQZL"
            outputs.update(
                arn=f"arn:aws:cloudfront::{ACCOUNT}:distribution/{resource_id}",
                domainName=CDN_DOMAIN,
            )
        elif args.typ == EDGE_FUNCTION:
            outputs.update(name=physical, arn=f"arn:aws:cloudfront::{ACCOUNT}:function/{physical}")
        elif args.typ in (ORIGIN_ACCESS, CACHE_POLICY, HEADERS_POLICY):
            outputs.update(name=physical)
        self.resources[args.name] = Registered(args.typ, args.name, inputs, outputs, resource_id)
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append(args.token)
        if args.token == CALLER_IDENTITY:
            identity = {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci"}
            return {**identity, "userId": "AIDACI", "id": ACCOUNT}
        raise NotImplementedError(f"unexpected invoke {args.token}")

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources.values() if r.typ == typ]

    def one(self, typ: str) -> Registered:
        (found,) = self.of_type(typ)
        return found


class RecordingMonitor(MockMonitor):
    """Adds what Mocks.new_resource is not told: URN, parent, dependencies, protect, and
    each property's dependencies (what the engine hands a CrossGuard stack policy)."""

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        recorded = self.mocks.resources.get(request.name)
        if recorded is not None:
            recorded.urn, recorded.parent = response.urn, request.parent
            recorded.dependencies = tuple(request.dependencies)
            recorded.protect = request.protect
            recorded.property_dependencies = {
                key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()
            }
        return response


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def run_program(
    program: Callable[[], Any],
    config: dict[str, str] | None = None,
    stack: str = "dev",
    mocks: PipelineMocks | None = None,
    preview: bool = False,
) -> PipelineMocks:
    """Run `program` under fresh mocks; whatever Output it returns is awaited (and checked)."""
    mocks = mocks or PipelineMocks()
    pulumi.runtime.reset_options(project="imgpipe", stack=stack)  # fresh root Stack
    pulumi.runtime.set_all_config({f"imgpipe:{k}": v for k, v in (config or {}).items()})
    pulumi.runtime.set_mocks(
        mocks, project="imgpipe", stack=stack, preview=preview, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.test(program)()
    return mocks


def fake_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """A tiny layer zip instead of a pip build (the real build is tested in test_layer.py);
    the (runtime, architecture) pairs asked for. The `fake_layer` fixture (conftest)."""
    path = tmp_path / "layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/PIL/__init__.py", "")
    requested: list[tuple[str, str]] = []

    def build(runtime: str, architecture: str, *args: Any, **kwargs: Any) -> Path:
        requested.append((runtime, architecture))
        return path

    monkeypatch.setattr(prepare, "build_layer", build)
    return requested


def run_main(config: dict[str, str] | None = None, stack: str = "dev") -> PipelineMocks:
    exported: dict[str, Any] = {}

    def program() -> pulumi.Output:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        outputs = pulumi.runtime.get_root_resource().outputs
        return pulumi.Output.all(**outputs).apply(exported.update)

    mocks = run_program(program, config=config, stack=stack)
    mocks.exported = exported  # type: ignore[attr-defined]
    return mocks


def image_pipeline(
    config: PipelineConfig,
    settings: StackSettings,
    names: ResourceNames,
    cls: type[ImagePipeline] = ImagePipeline,
) -> ImagePipeline:
    """The component as `__main__.py` makes it: checks, artifacts, then the resources
    (`cls`: a subclass, for the tests that break one resource on purpose)."""
    validate(config, settings, names)
    artifacts = prepare.artifacts(settings)
    return cls("image-pipeline", ImagePipelineArgs(config, settings, names, artifacts))


@dataclass
class Deployment:
    mocks: PipelineMocks
    config: PipelineConfig
    names: ResourceNames

    def physical(self, name: str) -> str:
        return name + SUFFIX


def deploy(
    profile: str = "thumbnail",
    settings: StackSettings | None = None,
    config: PipelineConfig | None = None,
) -> Deployment:
    config = config or PipelineConfig.single(load_named(profile))
    names = resource_names("imgpipe", "dev")
    mocks = run_program(lambda: image_pipeline(config, settings or StackSettings(), names))
    return Deployment(mocks, config, names)
