"""The pipeline on one machine: moto's server as AWS, SQS-fed workers as Lambda."""
