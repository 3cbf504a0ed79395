"""Agents write back: memories (facts, preferences, session context) and notes (decisions, conventions) per
source, kept in an append-only log and indexed as a Dagster asset.

    log.py      the durable log: <data_dir>/memory/<source>.jsonl, JSON lines, O_APPEND + flock + fsync
    records.py  validation and the replay of events (remember, forget, note) into what is live
    index.py    merge repeats and near-duplicates, embed, sync <source>__memory__<model> (the asset's work)
    recall.py   search: the collection's hits + the log written since it was built
    api.py      what the MCP tools and the CLI share (writes touch only the log)
    tools.py    the MCP tools; cli.py the `rag-assets memory|notes` commands; render.py Markdown
"""
