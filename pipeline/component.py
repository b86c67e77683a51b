"""The ImagePipeline component: every AWS resource of one stack, parented under one node.

Reads no config (only `__main__.py` does) and creates no resource inside `apply()`:
Outputs flow into inputs, and policies come from the pure functions in `pipeline.iam`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lambda_pkg.profiles import OUTPUT_PREFIX, PipelineConfig
from lambda_pkg.settings import function_environment
from pipeline.iam import assume_role_policy, function_policy
from pipeline.layer import build_function_zip, build_layer
from pipeline.stack import TRIGGER_EVENTS, ResourceNames, StackSettings

TYPE_TOKEN = "imgpipe:index:ImagePipeline"
HANDLER = "lambda_pkg.handler.handler"


@dataclass(frozen=True)
class ImagePipelineArgs:
    config: PipelineConfig
    settings: StackSettings
    names: ResourceNames


class ImagePipeline(pulumi.ComponentResource):
    input_bucket_name: pulumi.Output[str]
    output_bucket_name: pulumi.Output[str]
    table_name: pulumi.Output[str]
    function_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ImagePipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._create_buckets()
        self._create_table()
        self._create_log_group()
        self._create_layer()
        self._create_role()
        self._create_function()
        self._create_trigger()

        self.input_bucket_name = self.input_bucket.bucket
        self.output_bucket_name = self.output_bucket.bucket
        self.table_name = self.table.name
        self.function_name = self.function.name
        self.register_outputs(
            {
                "input_bucket_name": self.input_bucket_name,
                "output_bucket_name": self.output_bucket_name,
                "table_name": self.table_name,
                "function_name": self.function_name,
            }
        )

    def _create_buckets(self) -> None:
        names = self._args.names
        # Originals are the only copy of the user's data: destroying a non-empty input
        # bucket must fail. Renditions are derived (`reprocess` recreates them), so the
        # output bucket may be emptied on destroy.
        self.input_bucket = aws.s3.Bucket(names.input_bucket, force_destroy=False, opts=self._child)
        self.output_bucket = aws.s3.Bucket(
            names.output_bucket, force_destroy=True, opts=self._child
        )
        self.input_guards = self._private_encrypted(names.input_bucket, self.input_bucket)
        self.output_guards = self._private_encrypted(names.output_bucket, self.output_bucket)

    def _private_encrypted(self, name: str, bucket: aws.s3.Bucket) -> list[pulumi.Resource]:
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            # SSE-S3: encryption at rest without a KMS key to manage or pay for.
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=self._child,
        )
        return [block, encryption]

    def _create_table(self) -> None:
        self.table = aws.dynamodb.Table(
            self._args.names.metadata_table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="image_name",
            attributes=[aws.dynamodb.TableAttributeArgs(name="image_name", type="S")],
            opts=self._child,
        )

    def _create_log_group(self) -> None:
        # Created here (not by Lambda on first invoke) so retention is set and the role
        # needs no logs:CreateLogGroup. A prefix, because the function's own name is
        # autonamed and referring to it would be a cycle (function -> log group -> function).
        function = self._args.names.function
        self.log_group = aws.cloudwatch.LogGroup(
            f"{function}-logs",
            name_prefix=f"/aws/lambda/{function}-",
            retention_in_days=self._args.settings.log_retention_days,
            opts=self._child,
        )

    def _create_layer(self) -> None:
        settings = self._args.settings
        zip_path = build_layer(settings.runtime, settings.architecture)
        self.layer = aws.lambda_.LayerVersion(
            f"{self._args.names.function}-layer",
            layer_name=f"{self._args.names.function}-pillow",
            code=pulumi.FileArchive(str(zip_path)),
            compatible_runtimes=[settings.runtime],
            compatible_architectures=[settings.architecture],
            description="Pillow, built by pipeline/layer.py from requirements/layer.txt",
            opts=self._child,
        )

    def _create_role(self) -> None:
        function = self._args.names.function
        self.role = aws.iam.Role(
            f"{function}-role",
            assume_role_policy=json.dumps(assume_role_policy()),
            opts=self._child,
        )
        document = pulumi.Output.all(
            self.input_bucket.arn, self.output_bucket.arn, self.table.arn, self.log_group.arn
        ).apply(lambda arns: function_policy(*arns, output_prefix=OUTPUT_PREFIX))
        self.role_policy = aws.iam.RolePolicy(
            f"{function}-policy",
            role=self.role.id,
            policy=pulumi.Output.json_dumps(document),
            opts=self._child,
        )

    def _create_function(self) -> None:
        settings, config = self._args.settings, self._args.config
        variables = pulumi.Output.all(self.output_bucket.bucket, self.table.name).apply(
            lambda names: function_environment(names[0], names[1], config)
        )
        self.function = aws.lambda_.Function(
            self._args.names.function,
            runtime=settings.runtime,
            architectures=[settings.architecture],
            memory_size=settings.memory_mb,
            timeout=settings.timeout_s,
            handler=HANDLER,
            role=self.role.arn,
            code=pulumi.FileArchive(str(build_function_zip())),
            layers=[self.layer.arn],
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name
            ),
            # Without its policy the first invocations could not even write their logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )

    def _create_trigger(self) -> None:
        function = self._args.names.function
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.permission = aws.lambda_.Permission(
            f"{function}-s3-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="s3.amazonaws.com",
            source_arn=self.input_bucket.arn,
            # Bucket ARNs carry no account: pin it so a same-named bucket elsewhere cannot invoke.
            source_account=caller.account_id,
            opts=self._child,
        )
        self.notification = aws.s3.BucketNotification(
            f"{self._args.names.input_bucket}-notification",
            bucket=self.input_bucket.id,
            lambda_functions=[
                aws.s3.BucketNotificationLambdaFunctionArgs(
                    lambda_function_arn=self.function.arn, events=list(TRIGGER_EVENTS)
                )
            ],
            # S3 validates the destination when the notification is put, so the permission
            # must exist first; the bucket's other sub-resources too, since S3 rejects
            # concurrent configuration changes on one bucket (OperationAborted).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.permission, *self.input_guards]
            ),
        )
