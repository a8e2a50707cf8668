"""The errors releasegate reports, each carrying its exit code and the next step.

Adapters translate SDK exceptions into these at the boundary (``raise ... from exc``);
only ``app.py`` turns them into a process exit code.

    ReleasegateError (1: a bug or an unexpected state)
    ├── BadInput       (2: malformed tag, unknown environment, invalid config or flags)
    ├── Refused        (3: refused before any change to the cluster)
    ├── RolledBack     (4: failed, previous release restored and verified)
    ├── NeedsAttention (5: failed, the cluster is not known-good)
    └── Interrupted    (130: SIGINT or SIGTERM)

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations


class ReleasegateError(Exception):
    exit_code = 1

    def __init__(
        self, cause: str, hint: str = "", details: tuple[str, ...] = (), *, after_restore: str = ""
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint
        # The next step once what served before is restored, when it is not "fix the release"
        # (a deploy that ran out of --timeout needs a longer one, not a fix).
        self.after_restore = after_restore
        # Lines worth showing above the one-line summary (pod diagnostics, log tails).
        self.details = details
        # What the command had established when it failed (a pipeline Result), for reports.
        self.result: object | None = None

    def one_line(self) -> str:
        return f"{self.cause}. Next: {self.hint}" if self.hint else self.cause


class BadInput(ReleasegateError):
    exit_code = 2


class Refused(ReleasegateError):
    exit_code = 3


class RolledBack(ReleasegateError):
    exit_code = 4


class NeedsAttention(ReleasegateError):
    exit_code = 5


class Interrupted(ReleasegateError):
    exit_code = 130


def needs_attention(error: Exception) -> NeedsAttention:
    """Any error after the cluster was changed, as a NeedsAttention (a bug included), so that
    it takes the recovery path instead of ending the run half-way."""
    if isinstance(error, NeedsAttention):
        return error
    if isinstance(error, ReleasegateError):
        return NeedsAttention(error.cause, error.hint, error.details)
    cause = f"internal error: {error.__class__.__name__}: {error}".replace("\n", " ")
    return NeedsAttention(cause, "run again with --verbose and report the traceback")
