"""Anticipated failures as one-line MCP tool errors (isError results), never a crash: shared by every tool."""

from __future__ import annotations

from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

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
