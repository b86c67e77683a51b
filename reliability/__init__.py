"""imgpipe's reliability suite: hostile inputs, fuzzing, injected faults and load, measured.

`python -m reliability report [--long]` runs every scenario and writes RELIABILITY.md.
Like the tests, this package may import Pillow (it makes images); `pipeline/` never does.
"""
