"""Errors the front doors show, and the one-line text both show (the CLI on stderr, the MCP server as a
tool error). Light: importing it pulls in nothing else."""


class RunFailed(RuntimeError):
    """A Dagster run launched in process failed; the message names the run, the step, the source and the
    cause, and where the full log is."""


DEFAULT_POOL_TIMEOUT_S = 900.0  # how long an in-process run waits for a pool slot held by another run


class PoolWaitTimeout(RunFailed):
    """A run waited too long for a pool slot (the embedded store's writer slot); the message names the holder."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a one-line account of what was stopped (str() of it)."""


class RunRequestError(RuntimeError):
    """A run could not be queued (no queued coordinator, webserver unreachable, ...)."""


def one_line(e: BaseException) -> str:
    # str() of a KeyError is its repr ("'unknown ...'"): show the message itself.
    text = (str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__
