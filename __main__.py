"""The Pulumi program: stack config -> ImagePipeline -> stack outputs. Nothing else.

The only place that reads `pulumi.Config`. A bad setting, route or profile raises here,
before any resource is registered, so `pulumi preview` fails instead of a later upload.
"""

import pulumi

from pipeline.program.component import ImagePipeline, ImagePipelineArgs
from pipeline.program.names import resource_names
from pipeline.program.stack import (
    CONFIG_NAMESPACE,
    OUTPUT_ALARM_TOPIC,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_DEAD_LETTER_QUEUE_ARN,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INPUT_BUCKET,
    OUTPUT_METADATA_TABLE,
    OUTPUT_OUTPUT_BUCKET,
    StackSettings,
)

settings = StackSettings.from_values(pulumi.Config(CONFIG_NAMESPACE).get)
names = resource_names(pulumi.get_project(), pulumi.get_stack())

pipeline = ImagePipeline(
    "image-pipeline",
    ImagePipelineArgs(config=settings.pipeline_config(), settings=settings, names=names),
)

pulumi.export(OUTPUT_INPUT_BUCKET, pipeline.input_bucket_name)
pulumi.export(OUTPUT_OUTPUT_BUCKET, pipeline.output_bucket_name)
pulumi.export(OUTPUT_METADATA_TABLE, pipeline.table_name)
pulumi.export(OUTPUT_FUNCTION_NAME, pipeline.function_name)
pulumi.export(OUTPUT_DEAD_LETTER_QUEUE, pipeline.dead_letter_queue_url)
pulumi.export(OUTPUT_DEAD_LETTER_QUEUE_ARN, pipeline.dead_letter_queue_arn)
pulumi.export(OUTPUT_ALARM_TOPIC, pipeline.alarm_topic_arn)
