"""Delivery: renditions served through a CDN in the best format each browser takes.

negotiate.js is the CloudFront Function (viewer request) that picks the format; edge
compiles the stack's profiles into its table and holds the response headers the
distribution and the local CDN both send; node runs the function under node (host.js), for
the tests and the local CDN. Plain Python: the Pulumi program and the local stack share it.
"""
