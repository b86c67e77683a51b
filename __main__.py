"""The Pulumi program: stack config -> checks -> artifacts -> ImagePipeline -> outputs.

The only place that reads `pulumi.Config`. A bad setting, route or profile raises here,
before any resource is registered, so `pulumi preview` fails instead of a later upload;
so does an artifact that cannot be built, which is built before the component exists.
"""

import pulumi

from pipeline.program import prepare
from pipeline.program.component import ImagePipeline, ImagePipelineArgs, validate
from pipeline.program.names import resource_names
from pipeline.program.stack import (
    CONFIG_NAMESPACE,
    OUTPUT_ALARM_TOPIC,
    OUTPUT_CDN_DOMAIN,
    OUTPUT_CDN_URL,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_DEAD_LETTER_QUEUE_ARN,
    OUTPUT_EVENT_BUS,
    OUTPUT_EVENT_BUS_ARN,
    OUTPUT_FUNCTION_NAME,
    OUTPUT_INPUT_BUCKET,
    OUTPUT_METADATA_TABLE,
    OUTPUT_OUTPUT_BUCKET,
    StackSettings,
)

settings = StackSettings.from_values(pulumi.Config(CONFIG_NAMESPACE).get)
names = resource_names(pulumi.get_project(), pulumi.get_stack())
config = settings.pipeline_config()
validate(config, settings, names)  # before the build: a bad route must not wait for pip

pipeline = ImagePipeline(
    "image-pipeline",
    ImagePipelineArgs(config, settings, names, artifacts=prepare.artifacts(settings)),
)

pulumi.export(OUTPUT_INPUT_BUCKET, pipeline.input_bucket_name)
pulumi.export(OUTPUT_OUTPUT_BUCKET, pipeline.output_bucket_name)
pulumi.export(OUTPUT_METADATA_TABLE, pipeline.table_name)
pulumi.export(OUTPUT_FUNCTION_NAME, pipeline.function_name)
pulumi.export(OUTPUT_DEAD_LETTER_QUEUE, pipeline.dead_letter_queue_url)
pulumi.export(OUTPUT_DEAD_LETTER_QUEUE_ARN, pipeline.dead_letter_queue_arn)
pulumi.export(OUTPUT_ALARM_TOPIC, pipeline.alarm_topic_arn)
pulumi.export(OUTPUT_EVENT_BUS, pipeline.event_bus_name)
pulumi.export(OUTPUT_EVENT_BUS_ARN, pipeline.event_bus_arn)
if pipeline.cdn_domain is not None:  # imgpipe:cdn: where renditions are served from
    pulumi.export(OUTPUT_CDN_DOMAIN, pipeline.cdn_domain)
    pulumi.export(OUTPUT_CDN_URL, pipeline.cdn_url)
