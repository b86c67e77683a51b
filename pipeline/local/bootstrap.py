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
import time
import traceback


def _install_faults():
    """Test hooks, set only by tests through the environment: a crash in the middle of an
    image (after decoding, before any output is written), or an error on every attempt."""
    crash_key = os.environ.get("IMGPIPE_FAULT_CRASH_ONCE")
    marker = os.environ.get("IMGPIPE_FAULT_MARKER", "")
    if crash_key:
        # The render's entry in the function's own process (it renders in a child it
        # forks), so the crash is the function's, as if the worker were killed mid-image.
        isolated = sys.modules["lambda_pkg.isolated"]  # loaded by the handler's import
        original = isolated.process

        def crashing_process(*args, **kwargs):
            result = original(*args, **kwargs)
            current = os.environ.get("IMGPIPE_CURRENT_KEYS", "")
            if crash_key in current and marker and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(137)
            return result

        isolated.process = crashing_process


def _hog(event_text):
    """The out-of-memory fault: IMGPIPE_FAULT_HOG_MB megabytes, touched, held by the
    function's own process while it handles an event naming IMGPIPE_FAULT_HOG_KEY."""
    key = os.environ.get("IMGPIPE_FAULT_HOG_KEY")
    if not key or key not in event_text:
        return b""
    return b"x" * (int(os.environ.get("IMGPIPE_FAULT_HOG_MB") or 0) * 1024 * 1024)


class Context:
    """What Lambda's runtime passes as the handler's `context` (the parts one would use)."""

    def __init__(self, request_id, deadline_ms):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _raise_injected(key):
    """The error-on-every-attempt fault. IMGPIPE_FAULT_DELAY_S makes each attempt that long
    first (a slow poison message); IMGPIPE_FAULT_TRACE names a file that gets one line per
    attempt, `start end pid`, so a test can see whether two attempts ever overlapped."""
    started = time.time()
    time.sleep(float(os.environ.get("IMGPIPE_FAULT_DELAY_S") or 0))
    trace = os.environ.get("IMGPIPE_FAULT_TRACE")
    if trace:
        with open(trace, "a") as out:
            out.write(f"{started} {time.time()} {os.getpid()}\n")
    raise RuntimeError(f"injected fault for {key!r}")


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
    held = []
    for line in sys.stdin:
        request = json.loads(line)
        event = request["event"]
        os.environ["IMGPIPE_CURRENT_KEYS"] = json.dumps(event)
        context = Context(request["requestId"], request["deadlineMs"])
        try:
            if raise_key and raise_key in json.dumps(event):
                _raise_injected(raise_key)
            held.append(_hog(json.dumps(event)))  # a leak: held while the handler runs
            result = handler_module.handler(event, context)
            response = {"ok": True, "result": result}
        except Exception as exc:
            response = {
                "ok": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exc().splitlines(),
            }
        held.clear()
        protocol.write(json.dumps(response, default=str) + "\n")


if __name__ == "__main__":
    main()
