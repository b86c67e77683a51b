"""Everything that is not the function: the Pulumi component, artifacts, local stack, CLI.

Never imports Pillow: image work belongs to lambda_pkg.
"""
