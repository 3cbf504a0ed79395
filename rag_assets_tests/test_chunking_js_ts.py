"""JavaScript (+JSX) and TypeScript (+TSX) chunking on real tree-sitter grammars."""

from __future__ import annotations

from .test_chunking_syntax import by_symbol, chunks_ok, spans

JS = """\
'use strict';
const path = require('path');
const { EventEmitter } = require('events');

/**
 * Parse options.
 * @param {string[]} argv
 */
const parseOptions = (argv) => {
  const out = {};
  argv.forEach((a) => { out[a] = true; });
  return out;
};

/** A command. */
class Command extends EventEmitter {
  static DEFAULT = 'run';

  constructor(name) {
    super();
    this.name = name;
  }

  /** Parses. */
  parseOptions(argv) {
    return parseOptions(argv);
  }

  get label() { return this.name; }

  handle = (req) => this.emit('req', req);
}

function* ids() {
  yield 1;
}

module.exports = function createApp() {
  return new Command('app');
};
module.exports.Command = Command;
"""


def test_javascript_commonjs():
    chunks = chunks_ok("lib/command.js", JS)
    assert spans(chunks) == [
        ("module", "<module>", 1, 3),
        ("function", "parseOptions", 5, 13),  # JSDoc + arrow function assigned to a const
        ("class", "Command", 15, 32),
        ("method", "Command.constructor", 19, 22),
        ("method", "Command.parseOptions", 24, 27),  # its doc comment included
        ("method", "Command.label", 29, 29),  # getter one-liner
        ("method", "Command.handle", 31, 31),  # class field holding an arrow function
        ("function", "ids", 34, 36),  # generator
        ("function", "createApp", 38, 40),  # module.exports = function createApp() {}
        ("module", "<module>", 41, 41),
    ]
    assert {c.imports for c in chunks} == {("path", "events")}
    assert by_symbol(chunks, "parseOptions").signature == "const parseOptions = (argv) =>"
    assert by_symbol(chunks, "ids").signature == "function* ids()"
    assert by_symbol(chunks, "Command").text == (
        "/** A command. */\n"
        "class Command extends EventEmitter {\n"
        "  static DEFAULT = 'run';\n"
        "\n"
        "  constructor(name) { ... }\n"
        "\n"
        "  parseOptions(argv) { ... }\n"
        "\n"
        "  get label() { return this.name; }\n"
        "\n"
        "  handle = (req) => this.emit('req', req);\n"
        "}"
    )
    # The closure passed to forEach stays inside its function.
    assert "argv.forEach((a) => { out[a] = true; });" in by_symbol(chunks, "parseOptions").text


TS = """\
import { Injectable } from "@angular/core";
import type { Options } from "./options";
export * from "./router";

/** Options shape. */
export interface Config<T = string> {
  name: T;
  run(): void;
}

export type Handler = (req: Request) => void;

export enum Mode {
  Fast,
  Slow,
}

@Injectable({ providedIn: "root" })
export class Router<T> extends Base implements Config<T> {
  name!: T;
  private routes = new Map<string, Handler>();

  /** Adds a route. */
  add(path: string): this;
  add(path: string, h: Handler): this;
  @Log()
  add(path: string, h?: Handler): this {
    this.routes.set(path, h ?? (() => {}));
    return this;
  }

  run(): void {}
}

export function route(path: string): Handler;
export function route(path: string, h?: Handler): Handler {
  return h ?? (() => undefined);
}

export const compose = <T>(...fns: Array<(x: T) => T>) => (x: T) =>
  fns.reduce((acc, f) => f(acc), x);

export namespace Http.Status {
  export const OK = 200;
  export function isOk(code: number): boolean {
    return code === OK;
  }
}

export default abstract class Store {
  abstract get(key: string): string;
  protected cache(): void {
    // nothing
  }
}
"""


def test_typescript():
    chunks = chunks_ok("src/router.ts", TS)
    assert spans(chunks) == [
        ("module", "<module>", 1, 3),
        ("interface", "Config", 5, 9),
        ("type", "Handler", 11, 11),
        ("enum", "Mode", 13, 16),
        ("class", "Router", 18, 33),  # decorator line first
        ("method", "Router.add", 23, 30),  # doc + two overload signatures + @Log() + implementation
        ("method", "Router.run", 32, 32),
        ("function", "route", 35, 38),  # the overload signature joins the implementation
        ("function", "compose", 40, 41),  # generic arrow returning an arrow
        ("module", "<module>", 43, 44),  # namespace header and its constant
        ("function", "Http.Status.isOk", 45, 47),
        ("module", "<module>", 48, 48),
        ("class", "Store", 50, 55),  # export default abstract class
        ("method", "Store.cache", 52, 54),
    ]
    assert chunks[0].imports == ("@angular/core", "./options", "./router")
    sigs = {c.symbol: c.signature for c in chunks}
    assert sigs["Config"] == "export interface Config<T = string>"
    assert sigs["Router"] == "export class Router<T> extends Base implements Config<T>"  # no decorator
    assert sigs["Router.add"] == "add(path: string, h?: Handler): this"
    assert sigs["route"] == "export function route(path: string, h?: Handler): Handler"
    assert sigs["Handler"] == "export type Handler = (req: Request) => void"
    assert by_symbol(chunks, "Router").text == (
        '@Injectable({ providedIn: "root" })\n'
        "export class Router<T> extends Base implements Config<T> {\n"
        "  name!: T;\n"
        "  private routes = new Map<string, Handler>();\n"
        "\n"
        "  add(path: string): this;\n"
        "  add(path: string, h: Handler): this;\n"
        "  @Log()\n"
        "  add(path: string, h?: Handler): this { ... }\n"
        "\n"
        "  run(): void {}\n"
        "}"
    )
    # The abstract member has no body: it stays in the outline, with no chunk of its own.
    assert "  abstract get(key: string): string;" in by_symbol(chunks, "Store").text
    assert not [c for c in chunks if c.symbol == "Store.get"]


TSX = """\
import React, { useState } from "react";
import type { Props } from "./types";

/** The app. */
export default function App({ title }: Props) {
  const [n, setN] = useState<number>(0);
  return <div onClick={() => setN(n + 1)}>{title}</div>;
}

export const Button = ({ label }: { label: string }) => (
  <button>{label}</button>
);

export default class extends React.Component {
  render() {
    return <p />;
  }
}
"""


def test_tsx_and_jsx():
    chunks = chunks_ok("web/App.tsx", TSX)
    assert spans(chunks) == [
        ("module", "<module>", 1, 2),
        ("function", "App", 4, 8),  # export default function with JSX inside
        ("function", "Button", 10, 12),
        ("class", "default", 14, 18),  # export default class (anonymous)
        ("method", "default.render", 15, 17),
    ]
    assert chunks[1].signature == "export default function App({ title }: Props)"
    assert chunks[0].imports == ("react", "./types")
    # .jsx goes through the JavaScript grammar, which parses JSX.
    jsx = TSX.replace(": Props", "").replace("<number>", "").replace(": { label: string }", "")
    jsx = jsx.replace('import type { Props } from "./types";\n', "")
    chunks = chunks_ok("web/App.jsx", jsx)
    assert [(c.kind, c.symbol) for c in chunks] == [
        ("module", "<module>"), ("function", "App"), ("function", "Button"), ("class", "default"),
        ("method", "default.render")]
    assert {c.language for c in chunks} == {"javascript"}


def test_typescript_declaration_file_and_ambient_module():
    src = (
        "declare module \"express-serve\" {\n"  # 1
        "  export function serve(root: string): void;\n"
        "  export interface Options {\n"  # 3
        "    etag?: boolean;\n"
        "  }\n"
        "}\n"
    )
    chunks = chunks_ok("types/index.d.ts", src)
    assert spans(chunks) == [
        ("module", "<module>", 1, 2),  # a lone signature is a declaration: module code
        ("interface", "express-serve.Options", 3, 5),
        ("module", "<module>", 6, 6),
    ]
