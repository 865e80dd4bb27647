"""The console script's entry point: a signal that lands while Python is still importing the
command line (click, rich, codeaudit's own modules) ends like any other interrupt, with
``codeaudit: interrupted`` and exit code 130, instead of killing the process without a word
(SIGTERM) or printing a traceback (Ctrl-C); and one that lands after the run, while the
interpreter shuts down, leaves the run's exit code as it was. Kept small: everything it imports
is already loaded by the interpreter."""

from __future__ import annotations

import signal
import sys
from typing import Any


def main() -> None:
    def early(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, early)
    try:
        try:
            from codeaudit.cli import main as cli_main
        except KeyboardInterrupt:
            sys.stderr.write("codeaudit: interrupted\n")
            raise SystemExit(130) from None
        cli_main()  # installs its own handlers for the run and puts back these
    finally:
        # The run is decided (its files written or removed, its exit code chosen): a signal
        # while the interpreter shuts down must not turn a finished run into "killed by
        # SIGTERM". This is the console script's process, ending; codeaudit.cli.main is the
        # entry that restores the handlers for a Python caller.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
