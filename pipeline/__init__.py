"""Everything that is not the function, in three rooms: `program` (the Pulumi program),
`cli` (the `imgpipe` command) and `local` (the pipeline on one machine); `aws` makes the
boto3 clients all of them use.

Never imports Pillow: image work belongs to lambda_pkg.
"""
