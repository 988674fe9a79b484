"""User errors: one clear line on stderr and a non-zero exit, never a traceback."""
import functools
import sys


class UserError(Exception):
    """Bad input from the user (path, format, flag value, checkpoint of another model)."""


def one_line(exc: BaseException) -> str:
    """The user-facing line of an error. An error re-raised from a DataLoader worker carries
    the worker's traceback in its message; its last line is the original message."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        name = type(exc).__name__
        text = last.split(f"{name}: ", 1)[-1] if f"{name}: " in last else last
    return text.splitlines()[0] if text else type(exc).__name__


def main_guard(fn):
    """Wrap a CLI entry point: a UserError becomes `Error: <msg>` on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            print(f"Error: {one_line(exc)}", file=sys.stderr, flush=True)
            sys.exit(1)
        except KeyboardInterrupt:
            print("Error: interrupted", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper

