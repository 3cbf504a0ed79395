"""Anticipated failures as one-line MCP tool errors (isError results), never a crash: shared by every tool.

`check_arguments` validates a call's arguments against the tool's signature before the SDK does: the SDK
ignores unknown arguments, coerces (`k: true` became k=1, `"5"` became 5) and, when it does refuse, answers
with pydantic's multi-line text. Here an unknown argument is named, types are strict (JSON's true is not an
integer), the advertised `minimum`/`maximum` hold, and every refusal is one line.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from rag_assets.memory.records import MemoryInputError
from rag_assets.retrieval.search import SearchError
from rag_assets.service.errors import RunRequestError, one_line
from rag_assets.sources.config import SourcesError
from rag_assets.store import StoreBusyError, StoreError
from rag_assets.tables import TableError


@contextmanager
def tool_errors():
    try:
        yield
    except ToolError:
        raise
    except StoreBusyError as e:
        raise ToolError(f"store busy: {one_line(e)}") from None
    except (SearchError, SourcesError, StoreError, RunRequestError, MemoryInputError, TableError) as e:
        raise ToolError(one_line(e)) from None


def _shown(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(err: dict) -> str:
    name = ".".join(str(part) for part in err["loc"]) or "arguments"
    if err["type"] == "missing":
        return f"missing argument '{name}'"
    return f"argument '{name}': {err['msg'][:1].lower()}{err['msg'][1:]} (got {_shown(err.get('input'))})"


def _bounds(name: str, value, prop: dict) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if lo is not None and hi is not None else \
            (f">= {lo}" if lo is not None else f"<= {hi}")
        return f"{name} must be {span} (got {_shown(value)})"
    return None


def check_arguments(tool, arguments: dict | None) -> None:
    """One-line ToolError for arguments the tool cannot take: unknown names, wrong JSON types (strict: no
    bool for an int, no string for a number), or values outside the schema's minimum/maximum."""
    arguments = arguments or {}
    props = tool.parameters.get("properties", {})
    unknown = sorted(set(arguments) - set(props))
    if unknown:
        raise ToolError(f"{tool.name}: unknown argument{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(repr(u) for u in unknown)} (it takes: {', '.join(props)})")
    parsed = tool.fn_metadata.pre_parse_json(arguments)  # the SDK's own step: lists sent as JSON text
    try:
        tool.fn_metadata.arg_model.model_validate(parsed, strict=True)
    except ValidationError as e:
        raise ToolError(f"{tool.name}: " + "; ".join(_problem(err) for err in e.errors())) from None
    for name, value in parsed.items():
        problem = _bounds(name, value, props.get(name, {}))
        if problem:
            raise ToolError(problem)
