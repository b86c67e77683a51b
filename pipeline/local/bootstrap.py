"""Runs INSIDE the sandbox interpreter: a tiny stand-in for Lambda's runtime interface.

Started as `python -I -S bootstrap.py <path>...`: isolated mode and no site-packages, so
the only code it can import is the standard library plus the paths it is given (the
unpacked function zip, the unpacked layer, boto3). One JSON line in per invocation, one
JSON line out. Standard library only: this file must not depend on the project.
"""

import json
import logging
import os
import sys
import traceback


def _install_faults():
    """Test hooks, set only by tests through the environment: a crash in the middle of an
    image (after decoding, before any output is written), or an error on every attempt."""
    crash_key = os.environ.get("IMGPIPE_FAULT_CRASH_ONCE")
    marker = os.environ.get("IMGPIPE_FAULT_MARKER", "")
    if crash_key:
        imaging = sys.modules["lambda_pkg.imaging"]  # loaded by the handler's import
        original = imaging.process

        def crashing_process(data, profile):
            result = original(data, profile)
            current = os.environ.get("IMGPIPE_CURRENT_KEYS", "")
            if crash_key in current and marker and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(137)  # as if the worker were killed mid-image
            return result

        imaging.process = crashing_process


def main() -> None:
    sys.path[:0] = sys.argv[1:]
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # the handler's prints must not corrupt the protocol
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="[%(levelname)s] %(asctime)s %(name)s %(message)s",
    )
    import lambda_pkg.handler as handler_module

    _install_faults()
    raise_key = os.environ.get("IMGPIPE_FAULT_RAISE")
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        event = request["event"]
        os.environ["IMGPIPE_CURRENT_KEYS"] = json.dumps(event)
        try:
            if raise_key and raise_key in json.dumps(event):
                raise RuntimeError(f"injected fault for {raise_key!r}")
            result = handler_module.handler(event, None)
            response = {"ok": True, "result": result}
        except Exception as exc:
            response = {
                "ok": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exc().splitlines(),
            }
        protocol.write(json.dumps(response, default=str) + "\n")


if __name__ == "__main__":
    main()
