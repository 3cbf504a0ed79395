"""Errors the front doors show, and the one-line text both show (the CLI on stderr, the MCP server as a
tool error). Light: importing it pulls in nothing else."""


class RunFailed(RuntimeError):
    """A Dagster run launched in process failed; the message names the step and the cause."""


class RunRequestError(RuntimeError):
    """A run could not be queued (no queued coordinator, webserver unreachable, ...)."""


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
