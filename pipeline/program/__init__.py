"""The Pulumi program's parts: what `__main__.py` builds a stack from.

component (the resources), iam (their policies), artifacts (the function zip and the
layer), names (within every service's limits), stack (the `imgpipe:*` settings), routing
(prefix/suffix routes), guards (sizes and limits checked before anything is created).
Only component imports pulumi; the rest is plain Python the CLI and the local stack share.
"""
