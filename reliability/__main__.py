"""`python -m reliability COMMAND`: report [--long | --budget] | load | throttling | sigkill |
emulator_restart | ordering | integrity | fuzz. Each scenario prints its result as JSON."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "fuzz":
        from reliability import fuzz

        return fuzz.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        epilog="python -m reliability fuzz --help: the fuzzer's own options",
    )
    parser.add_argument(
        "command",
        choices=(
            "report",
            "load",
            "throttling",
            "sigkill",
            "emulator_restart",
            "ordering",
            "integrity",
        ),
    )
    parser.add_argument("--long", action="store_true", help="report: the long forms")
    parser.add_argument(
        "--rerender", action="store_true", help="report: rewrite the Markdown from the last run"
    )
    parser.add_argument(
        "--budget",
        action="store_true",
        help="report: only the hostile shapes under 512/1024 MB (RELIABILITY.md's budget table)",
    )
    for option in ("count", "kills", "restarts", "keys", "groups", "workers", "seed"):
        parser.add_argument(f"--{option}", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    if args.command == "report" and args.budget:
        from reliability import budget

        return budget.main()
    if args.command == "report":
        from reliability import report

        return report.rerender() if args.rerender else report.main(args.long)
    from reliability import scenarios

    options = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("command", "long", "rerender", "budget")
    }
    with scenarios.quiet_logs():
        result = getattr(scenarios, args.command)(**options)
    print(json.dumps(result.as_dict(), indent=1))
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
