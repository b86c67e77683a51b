"""The ImagePipeline component: every AWS resource of one stack, parented under one node.

Reads no config (only `__main__.py` does) and creates no resource inside `apply()`:
Outputs flow into inputs, and policies come from the pure functions in `pipeline.program.iam`.
Everything that can be refused before a resource exists (routes, sizes, limits) is
checked first, in `validate`, so a bad stack fails `pulumi preview` with no partial state;
the artifacts come in built and checked (`prepare.artifacts`), as paths.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lambda_pkg.profiles import OUTPUT_PREFIX, PipelineConfig, ProfileError
from lambda_pkg.records import table_definition
from lambda_pkg.routes import route_from_dict
from lambda_pkg.settings import DEFAULT_EVENT_BUS, function_environment
from pipeline.delivery import edge
from pipeline.program import routing
from pipeline.program.guards import (
    DeployGuardError,
    check_capacity,
    check_cdn,
    check_environment_size,
)
from pipeline.program.iam import (
    alarm_topic_key_policy,
    assume_role_policy,
    default_event_bus_arn,
    function_policy,
    output_bucket_policy,
)
from pipeline.program.names import ResourceNames, autonamed
from pipeline.program.prepare import Artifacts
from pipeline.program.stack import EVENT_BUS_OWN, TRIGGER_EVENTS, StackSettings

TYPE_TOKEN = "imgpipe:index:ImagePipeline"
HANDLER = "lambda_pkg.handler.handler"
# Failed events stay in the DLQ for SQS's maximum: two weeks to notice, fix and redrive.
DLQ_RETENTION_S = 14 * 24 * 3600
ALARM_PERIOD_S = 300
# Alarm when the slowest invocation of a period used this much of the timeout.
DURATION_ALARM_RATIO = 0.8
# The CDN's cache: the object's own Cache-Control decides (the profile's cache_control), kept
# at least 0 s and at most a year; a day when an object has none.
CDN_MIN_TTL_S = 0
CDN_DEFAULT_TTL_S = 24 * 3600
CDN_MAX_TTL_S = 365 * 24 * 3600
CDN_ORIGIN_ID = "renditions"
# With a custom domain: SNI (no dedicated-IP charge) and TLS 1.2 or later.
CDN_TLS_POLICY = "TLSv1.2_2021"


@dataclass(frozen=True)
class ImagePipelineArgs:
    config: PipelineConfig
    settings: StackSettings
    names: ResourceNames
    artifacts: Artifacts  # built by `prepare.artifacts` before the component is constructed


def validate(config: PipelineConfig, settings: StackSettings, names: ResourceNames) -> None:
    """Everything refusable before a resource exists: a bad stack leaves no partial state."""
    ordered = routing.order_routes(config.routes)
    if ordered != config.routes:
        # The handler takes the first match; S3 has no order. They agree only in this order.
        raise DeployGuardError(
            "PipelineConfig.routes must list specific routes first and the catch-all last "
            f"(got {[routing.describe(r) for r in config.routes]}); build it from "
            "StackSettings.resolved_routes()"
        )
    shipped = sorted(p.name for p in config.profiles)
    for i, route in enumerate(config.routes):
        try:
            route_from_dict(asdict(route), "PipelineConfig", f"routes[{i}]", shipped)
        except ProfileError as problem:
            raise DeployGuardError(str(problem)) from None
    routing.check_no_self_trigger(config.routes, settings.single_bucket)
    check_cdn(config, settings)
    check_capacity(config, settings.memory_mb, settings.timeout_s)
    output_bucket = names.input_bucket if settings.single_bucket else names.output_bucket
    own_bus = settings.event_bus == EVENT_BUS_OWN
    check_environment_size(
        function_environment(
            autonamed(output_bucket),
            autonamed(names.metadata_table),
            config,
            autonamed(names.event_bus) if own_bus else DEFAULT_EVENT_BUS,
        ),
        config,
    )


class ImagePipeline(pulumi.ComponentResource):
    input_bucket_name: pulumi.Output[str]
    output_bucket_name: pulumi.Output[str]
    table_name: pulumi.Output[str]
    function_name: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]
    event_bus_name: pulumi.Input[str]
    event_bus_arn: pulumi.Output[str]
    cdn_domain: pulumi.Output[str] | None  # None without imgpipe:cdn
    cdn_url: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ImagePipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        validate(args.config, args.settings, args.names)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self._create_buckets()
        self._create_table()
        self._create_event_bus()
        self._create_log_group()
        self._create_layer()
        self._create_dead_letter_queue()
        self._create_role()
        self._create_function()
        self._create_failure_handling()
        self._create_alarms()
        self._create_trigger()

        self.input_bucket_name = self.input_bucket.bucket
        self.output_bucket_name = self.output_bucket.bucket
        self.table_name = self.table.name
        self.function_name = self.function.name
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.alarm_topic_arn = self.alarm_topic.arn
        self.cdn_domain = self.cdn_url = None
        cdn_outputs = {}
        if self.distribution is not None:
            self.cdn_domain = self.distribution.domain_name
            aliases = self._args.settings.cdn_aliases
            self.cdn_url = (
                pulumi.Output.from_input(f"https://{aliases[0]}")
                if aliases
                else pulumi.Output.concat("https://", self.distribution.domain_name)
            )
            cdn_outputs = {"cdn_domain": self.cdn_domain, "cdn_url": self.cdn_url}
        self.register_outputs(
            {
                **cdn_outputs,
                "input_bucket_name": self.input_bucket_name,
                "output_bucket_name": self.output_bucket_name,
                "table_name": self.table_name,
                "function_name": self.function_name,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "dead_letter_queue_arn": self.dead_letter_queue_arn,
                "alarm_topic_arn": self.alarm_topic_arn,
                "event_bus_name": self.event_bus_name,
                "event_bus_arn": self.event_bus_arn,
            }
        )

    # -- storage ---------------------------------------------------------------------------

    def _create_buckets(self) -> None:
        names, settings = self._args.names, self._args.settings
        # Originals are the only copy of the user's data: destroying a non-empty input
        # bucket fails unless the stack opts in. Renditions are derived (`reprocess`
        # recreates them), so a separate output bucket may be emptied on destroy.
        self.input_bucket = aws.s3.Bucket(
            names.input_bucket,
            force_destroy=settings.force_destroy_input,
            opts=pulumi.ResourceOptions(parent=self, protect=settings.protect),
        )
        if settings.single_bucket:
            self.output_bucket = self.input_bucket
        else:
            self.output_bucket = aws.s3.Bucket(
                names.output_bucket, force_destroy=True, opts=self._child
            )
        # Before the guards: the output bucket's policy names the distribution.
        self.distribution = self._create_cdn() if settings.cdn else None
        self.input_guards = self._bucket_guards(
            names.input_bucket, self.input_bucket, serves=settings.single_bucket
        )
        if settings.single_bucket:
            self.output_guards = self.input_guards
        else:
            self.output_guards = self._bucket_guards(
                names.output_bucket, self.output_bucket, serves=True
            )
        if settings.output_expiration_days:
            self.output_guards.append(self._output_lifecycle())

    def _bucket_guards(
        self, name: str, bucket: aws.s3.Bucket, serves: bool = False
    ) -> list[pulumi.Resource]:
        """Private, owner-enforced, encrypted, TLS-only (and optionally versioned); the bucket
        that `serves` renditions lets the CDN's distribution read them, if there is one.

        Each depends on the previous one: S3 rejects concurrent configuration changes to
        one bucket (OperationAborted), which Pulumi would otherwise make in parallel.
        """
        settings = self._args.settings
        guards: list[pulumi.Resource] = []

        def after() -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=guards[-1:])

        guards.append(
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=after(),
            )
        )
        guards.append(
            aws.s3.BucketOwnershipControls(
                f"{name}-ownership",
                bucket=bucket.id,
                # ACLs disabled: the bucket owner owns every object, whoever wrote it.
                rule={"object_ownership": "BucketOwnerEnforced"},
                opts=after(),
            )
        )
        if settings.kms_key_arn:
            default: dict[str, Any] = {
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": settings.kms_key_arn,
            }
        else:
            # SSE-S3: encryption at rest without a KMS key to manage or pay for.
            default = {"sse_algorithm": "AES256"}
        guards.append(
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                # Bucket keys cut KMS requests (and cost) by ~99%; harmless with SSE-S3.
                rules=[
                    {
                        "apply_server_side_encryption_by_default": default,
                        "bucket_key_enabled": bool(settings.kms_key_arn),
                    }
                ],
                opts=after(),
            )
        )
        reader = self.distribution.arn if serves and self.distribution is not None else None
        policy = pulumi.Output.all(bucket.arn, reader).apply(
            lambda arns: output_bucket_policy(arns[0], arns[1])
        )
        guards.append(
            aws.s3.BucketPolicy(
                # Still "-tls-only" with the CDN's read in it: a new name would replace it.
                f"{name}-tls-only",
                bucket=bucket.id,
                policy=pulumi.Output.json_dumps(policy),
                opts=after(),
            )
        )
        if settings.versioning:
            guards.append(
                aws.s3.BucketVersioning(
                    f"{name}-versioning",
                    bucket=bucket.id,
                    versioning_configuration={"status": "Enabled"},
                    opts=after(),
                )
            )
        return guards

    def _output_lifecycle(self) -> pulumi.Resource:
        settings, days = self._args.settings, self._args.settings.output_expiration_days
        rule: dict[str, Any] = {
            "id": "expire-renditions",
            "status": "Enabled",
            # Only renditions: in a single bucket the originals must never expire.
            "filter": {"prefix": OUTPUT_PREFIX},
            "expiration": {"days": days},
        }
        if settings.versioning:
            rule["noncurrent_version_expiration"] = {"noncurrent_days": days}
        names = self._args.names
        name = names.input_bucket if settings.single_bucket else names.output_bucket
        return aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.output_bucket.id,
            rules=[rule],
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.output_guards[-1:]),
        )

    # -- the CDN ---------------------------------------------------------------------------

    def _create_cdn(self) -> aws.cloudfront.Distribution:
        """CloudFront in front of the output bucket: it reads renditions with its Origin
        Access Control (the bucket stays private), a viewer-request function picks each
        canonical URL's format, and the cache keys on the rewritten URI alone."""
        names, settings = self._args.names, self._args.settings
        if settings.kms_key_arn:
            pulumi.log.warn(
                "imgpipe:cdn with imgpipe:kmsKeyArn: the key's policy must let "
                "cloudfront.amazonaws.com kms:Decrypt (condition AWS:SourceArn = the "
                "distribution), or the CDN answers 403 for every rendition"
            )
        self.cdn_function = aws.cloudfront.Function(
            names.cdn_function,
            runtime=edge.RUNTIME,
            code=edge.function_code(self._args.config),
            comment="imgpipe: a rendition's canonical URL -> the best format Accept takes",
            publish=True,
            opts=self._child,
        )
        self.cdn_access = aws.cloudfront.OriginAccessControl(
            names.cdn_access,
            description=f"CloudFront reads {names.output_bucket} with SigV4",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=self._child,
        )
        self.cdn_cache_policy = aws.cloudfront.CachePolicy(
            names.cdn_cache_policy,
            comment="imgpipe renditions: the object's Cache-Control; keyed by the URI alone",
            min_ttl=CDN_MIN_TTL_S,
            default_ttl=CDN_DEFAULT_TTL_S,
            max_ttl=CDN_MAX_TTL_S,
            # Accept is not in the key: the function has already put the format in the URI.
            # Images are compressed already, so no Accept-Encoding variants either.
            parameters_in_cache_key_and_forwarded_to_origin={
                "cookies_config": {"cookie_behavior": "none"},
                "headers_config": {"header_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
                "enable_accept_encoding_gzip": False,
                "enable_accept_encoding_brotli": False,
            },
            opts=self._child,
        )
        self.cdn_headers_policy = self._create_headers_policy()
        return aws.cloudfront.Distribution(
            names.cdn,
            enabled=True,
            comment=f"imgpipe renditions of {names.output_bucket}",
            aliases=list(settings.cdn_aliases) or None,
            http_version="http2and3",
            is_ipv6_enabled=True,
            origins=[
                {
                    "origin_id": CDN_ORIGIN_ID,
                    "domain_name": self.output_bucket.bucket_regional_domain_name,
                    "origin_access_control_id": self.cdn_access.id,
                }
            ],
            default_cache_behavior={
                "target_origin_id": CDN_ORIGIN_ID,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
                "compress": False,
                "cache_policy_id": self.cdn_cache_policy.id,
                "response_headers_policy_id": self.cdn_headers_policy.id,
                "function_associations": [
                    {"event_type": "viewer-request", "function_arn": self.cdn_function.arn}
                ],
            },
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=(
                {
                    "acm_certificate_arn": settings.cdn_certificate_arn,
                    "ssl_support_method": "sni-only",
                    "minimum_protocol_version": CDN_TLS_POLICY,
                }
                if settings.cdn_certificate_arn
                else {"cloudfront_default_certificate": True}
            ),
            opts=self._child,
        )

    def _create_headers_policy(self) -> aws.cloudfront.ResponseHeadersPolicy:
        """The headers of pipeline.delivery.edge, which the local CDN sends too. A policy
        rather than a viewer-response function: no per-request compute, and it adds them to
        cached and fresh responses alike. Vary: Accept on every response, not only the
        negotiated ones: a policy cannot tell them apart, and it only narrows sharing."""
        return aws.cloudfront.ResponseHeadersPolicy(
            self._args.names.cdn_headers_policy,
            comment="imgpipe renditions: Vary Accept, nosniff, HSTS, CORS for any origin",
            custom_headers_config={
                "items": [{"header": "Vary", "value": edge.VARY, "override": True}]
            },
            security_headers_config={
                "content_type_options": {"override": True},
                "strict_transport_security": {
                    "access_control_max_age_sec": edge.HSTS_MAX_AGE_S,
                    "override": True,
                },
            },
            cors_config={
                "access_control_allow_credentials": False,
                "access_control_allow_headers": {"items": ["*"]},
                "access_control_allow_methods": {"items": list(edge.CORS_METHODS)},
                "access_control_allow_origins": {"items": [edge.CORS_ALLOW_ORIGIN]},
                "origin_override": True,
            },
            opts=self._child,
        )

    def _create_table(self) -> None:
        table = table_definition()  # the same definition the local stack and tests create
        (key,) = table["KeySchema"]
        protect = self._args.settings.protect
        # The only record of deleted and failed images: restorable to any second of the
        # last 35 days, and refused by both AWS and Pulumi on delete unless the stack opts out.
        self.table = aws.dynamodb.Table(
            self._args.names.metadata_table,
            point_in_time_recovery={"enabled": True},
            deletion_protection_enabled=protect,
            billing_mode=table["BillingMode"],
            hash_key=key["AttributeName"],
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=a["AttributeName"], type=a["AttributeType"])
                for a in table["AttributeDefinitions"]
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index["IndexName"],
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=k["AttributeName"], key_type=k["KeyType"]
                        )
                        for k in index["KeySchema"]
                    ],
                    projection_type=index["Projection"]["ProjectionType"],
                )
                for index in table["GlobalSecondaryIndexes"]
            ],
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )

    def _create_event_bus(self) -> None:
        """Where the function announces outcomes: a bus of the stack's own, or the account's
        default bus, which exists already (its ARN is the table's region and account)."""
        self.event_bus: aws.cloudwatch.EventBus | None = None
        if self._args.settings.event_bus != EVENT_BUS_OWN:
            self.event_bus_name = DEFAULT_EVENT_BUS
            self.event_bus_arn = self.table.arn.apply(default_event_bus_arn)
            return
        self.event_bus = aws.cloudwatch.EventBus(
            self._args.names.event_bus,
            description=f"Outcomes of {self._args.names.function}: Image Processed/Failed/Deleted",
            opts=self._child,
        )
        self.event_bus_name, self.event_bus_arn = self.event_bus.name, self.event_bus.arn

    # -- the function ----------------------------------------------------------------------

    def _create_log_group(self) -> None:
        # Created here (not by Lambda on first invoke) so retention is set and the role
        # needs no logs:CreateLogGroup. A prefix, because the function's own name is
        # autonamed and referring to it would be a cycle (function -> log group -> function).
        names = self._args.names
        self.log_group = aws.cloudwatch.LogGroup(
            f"{names.function}-logs",
            name_prefix=names.log_group_prefix,
            retention_in_days=self._args.settings.log_retention_days,
            opts=self._child,
        )

    def _create_layer(self) -> None:
        settings, artifacts = self._args.settings, self._args.artifacts
        self.layer: aws.lambda_.LayerVersion | None = None
        if artifacts.layer_zip is None:
            self.layer_version_arn: pulumi.Input[str] = artifacts.layer_arn or ""
            return
        built = settings.layer_zip is None
        self.layer = aws.lambda_.LayerVersion(
            f"{self._args.names.function}-layer",
            layer_name=self._args.names.layer,
            code=pulumi.FileArchive(str(artifacts.layer_zip)),
            compatible_runtimes=[settings.runtime],
            compatible_architectures=[settings.architecture],
            description=(
                "Pillow, built by pipeline/program/artifacts.py from requirements/layer.txt"
                if built
                else f"Pillow, prebuilt ({artifacts.layer_zip.name}, imgpipe:layerZip)"
            ),
            opts=self._child,
        )
        self.layer_version_arn = self.layer.arn

    def _create_dead_letter_queue(self) -> None:
        self.dead_letter_queue = aws.sqs.Queue(
            self._args.names.dead_letter_queue,
            message_retention_seconds=DLQ_RETENTION_S,
            # SSE-SQS: encrypted at rest with no key policy for Lambda to be granted.
            sqs_managed_sse_enabled=True,
            opts=self._child,
        )

    def _create_role(self) -> None:
        names, settings = self._args.names, self._args.settings
        self.role = aws.iam.Role(
            names.role,
            assume_role_policy=json.dumps(assume_role_policy()),
            opts=self._child,
        )
        patterns = routing.read_patterns(self._args.config.routes)
        document = pulumi.Output.all(
            self.input_bucket.arn,
            self.output_bucket.arn,
            self.table.arn,
            self.log_group.arn,
            self.dead_letter_queue.arn,
            self.event_bus_arn,
        ).apply(
            lambda arns: function_policy(
                *arns[:4],
                output_prefix=OUTPUT_PREFIX,
                read_patterns=patterns,
                dead_letter_queue_arn=arns[4],
                event_bus_arn=arns[5],
                kms_key_arn=settings.kms_key_arn,
                tracing=settings.tracing,
            )
        )
        self.role_policy = aws.iam.RolePolicy(
            names.role_policy,
            role=self.role.id,
            policy=pulumi.Output.json_dumps(document),
            opts=self._child,
        )

    def _create_function(self) -> None:
        settings, config = self._args.settings, self._args.config
        variables = pulumi.Output.all(
            self.output_bucket.bucket, self.table.name, self.event_bus_name
        ).apply(lambda names: function_environment(names[0], names[1], config, names[2]))
        self.function = aws.lambda_.Function(
            self._args.names.function,
            runtime=settings.runtime,
            architectures=[settings.architecture],
            memory_size=settings.memory_mb,
            timeout=settings.timeout_s,
            reserved_concurrent_executions=settings.reserved_concurrency,
            handler=HANDLER,
            role=self.role.arn,
            code=pulumi.FileArchive(str(self._args.artifacts.function_zip)),
            layers=[self.layer_version_arn],
            # Active: Lambda samples and records each invocation in X-Ray (imgpipe:tracing).
            # Always sent: the provider keeps an omitted mode, so "off" must say PassThrough.
            tracing_config={"mode": "Active" if settings.tracing else "PassThrough"},
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name
            ),
            # Without its policy the first invocations could not even write their logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )

    def _create_failure_handling(self) -> None:
        function, settings = self._args.names.function, self._args.settings
        self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{function}-async",
            function_name=self.function.name,
            maximum_retry_attempts=settings.retry_attempts,
            maximum_event_age_in_seconds=settings.max_event_age_s,
            destination_config={"on_failure": {"destination": self.dead_letter_queue.arn}},
            # Lambda checks the role may send to the destination when the config is put.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.recursion_config = aws.lambda_.FunctionRecursionConfig(
            f"{function}-recursion",
            function_name=self.function.name,
            # Belt and braces with the routing checks: a loop through S3 is stopped by Lambda.
            recursive_loop="Terminate",
            opts=self._child,
        )

    def _create_alarms(self) -> None:
        names, settings = self._args.names, self._args.settings
        # CloudWatch cannot publish to a topic under the AWS-managed key (alias/aws/sns):
        # its key policy does not admit cloudwatch.amazonaws.com and cannot be edited. So
        # the topic gets a key of its own whose policy does.
        self.alarm_key = aws.kms.Key(
            f"{names.alarm_topic}-key",
            description=f"Encrypts the alarm topic of {names.function}",
            enable_key_rotation=True,
            policy=pulumi.Output.json_dumps(
                self._caller.apply(lambda c: alarm_topic_key_policy(c.account_id, c.arn))
            ),
            opts=self._child,
        )
        self.alarm_topic = aws.sns.Topic(
            names.alarm_topic, kms_master_key_id=self.alarm_key.arn, opts=self._child
        )
        self.alarm_subscription = None
        if settings.alarm_email:
            # E-mail subscriptions stay "pending confirmation" until the recipient clicks.
            self.alarm_subscription = aws.sns.TopicSubscription(
                f"{names.alarm_topic}-email",
                topic=self.alarm_topic.arn,
                protocol="email",
                endpoint=settings.alarm_email,
                opts=self._child,
            )
        function_dims = {"FunctionName": self.function.name}
        timeout_ms = settings.timeout_s * 1000
        self.alarms = {
            "errors": self._alarm(
                "errors", "AWS/Lambda", "Errors", "Sum", 0, function_dims,
                "The function raised: events are being retried and may reach the DLQ.",
            ),
            "throttles": self._alarm(
                "throttles", "AWS/Lambda", "Throttles", "Sum", 0, function_dims,
                "Invocations were throttled (account limit or imgpipe:reservedConcurrency).",
            ),
            "duration": self._alarm(
                "duration", "AWS/Lambda", "Duration", "Maximum",
                round(timeout_ms * DURATION_ALARM_RATIO), function_dims,
                f"An invocation used over {DURATION_ALARM_RATIO:.0%} of the {settings.timeout_s} s "
                "timeout: raise imgpipe:timeout or imgpipe:memory before images time out.",
            ),
            "dlq": self._alarm(
                "dlq-depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0,
                {"QueueName": self.dead_letter_queue.name},
                "Failed events wait in the DLQ: `imgpipe dlq ls`, fix, `imgpipe dlq redrive`.",
            ),
        }  # fmt: skip

    def _alarm(
        self,
        suffix: str,
        namespace: str,
        metric: str,
        statistic: str,
        threshold: float,
        dimensions: dict[str, pulumi.Input[str]],
        description: str,
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            self._args.names.alarm(suffix),
            namespace=namespace,
            metric_name=metric,
            statistic=statistic,
            dimensions=dimensions,
            period=ALARM_PERIOD_S,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            # No invocations means nothing failed: quiet stacks stay OK, not INSUFFICIENT_DATA.
            treat_missing_data="notBreaching",
            alarm_description=description,
            alarm_actions=[self.alarm_topic.arn],
            ok_actions=[self.alarm_topic.arn],
            opts=self._child,
        )

    def _create_trigger(self) -> None:
        self.permission = aws.lambda_.Permission(
            self._args.names.permission,
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="s3.amazonaws.com",
            source_arn=self.input_bucket.arn,
            # Bucket ARNs carry no account: pin it so a same-named bucket elsewhere cannot invoke.
            source_account=self._caller.account_id,
            opts=self._child,
        )
        rules = routing.notification_rules(self._args.config.routes, TRIGGER_EVENTS)
        self.notification = aws.s3.BucketNotification(
            f"{self._args.names.input_bucket}-notification",
            bucket=self.input_bucket.id,
            lambda_functions=[
                aws.s3.BucketNotificationLambdaFunctionArgs(
                    lambda_function_arn=self.function.arn,
                    events=list(events),
                    filter_prefix=prefix or None,
                    filter_suffix=suffix or None,
                )
                for events, prefix, suffix in rules
            ],
            # S3 validates the destination when the notification is put, so the permission
            # must exist first; the bucket's other sub-resources too, since S3 rejects
            # concurrent configuration changes on one bucket (OperationAborted).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.permission, *self.input_guards]
            ),
        )
