"""JavaScript / TypeScript definitions made by assignment (the CommonJS / prototype style of
express and most npm packages): `app.use = function use(fn) {}`, `Router.prototype.route =
...`, `module.exports = function () {}`, `methods.forEach(function (m) { app[m] = ... })`.

Symbols come from the assignment target: `.prototype` dropped, computed members as written,
`module.exports` named by the function (else the file's stem, the directory for index.js).
Kind: "method" for a member of an object / prototype, "function" for a plain name and for
members of `exports` / `module.exports`. Comments attach as to declarations: directly above,
no blank line between (express's JSDoc-blank-line style leaves the JSDoc in module code).
"""

from __future__ import annotations

from .test_chunking_syntax import by_symbol, chunks_ok, spans

APP = """\
/*!
 * express
 * MIT Licensed
 */

'use strict';

var methods = require('methods');
var slice = Array.prototype.slice;

/**
 * Initialize a new `Router` with the given `options`.
 *
 * @param {Object} [options]
 * @public
 */

var proto = module.exports = function(options) {
  function router(req, res, next) {
    router.handle(req, res, next);
  }

  setPrototypeOf(router, proto);
  return router;
};

/**
 * Proxy `Router#use()` to add middleware to the app router.
 *
 * @public
 */
app.use = function use(fn) {
  var offset = 0;
  return this;
};

/**
 * Send a response.
 * @param {string|number|boolean|object|Buffer} body
 */
res.send = function send(body) {
  var chunk = body;
  return this;
};

// Dispatch a req, res into the router.
proto.handle = function handle(req, res, out) {
  next();
};

Router.prototype.route = function route(path) {
  return new Route(path);
};

exports.compileETag = function(val) {
  return val;
};

/**
 * Delegate `.VERB(...)` calls to `router.VERB(...)`.
 */

methods.forEach(function(method){
  app[method] = function(path){
    var route = this._router.route(path);
    route[method].apply(route, slice.call(arguments, 1));
    return this;
  };
});

res.contentType = res.type = function contentType(type) {
  return this.set('Content-Type', type);
};

app.settings = {};
exports = module.exports = createApplication;
"""


def test_express_style_assignments():
    chunks = chunks_ok("lib/router/index.js", APP)
    assert spans(chunks) == [
        ("module", "<module>", 1, 16),  # a JSDoc a blank line above: module code, as for declarations
        ("function", "router", 18, 25),  # chained `var proto = module.exports = function`: the dir name
        ("method", "app.use", 27, 35),  # JSDoc directly above: attached
        ("method", "res.send", 37, 44),
        ("method", "proto.handle", 46, 49),  # line comment directly above
        ("method", "Router.route", 51, 53),  # `.prototype` dropped
        ("function", "exports.compileETag", 55, 57),  # a module export: a function
        ("module", "<module>", 59, 61),
        ("method", "app[method]", 63, 69),  # the whole forEach around one assignment
        ("method", "res.type", 71, 73),  # `a = b = function`: the innermost target
        ("module", "<module>", 75, 76),
    ]
    sigs = {c.symbol: c.signature for c in chunks}
    assert sigs == {
        "<module>": "",
        "router": "var proto = module.exports = function(options)",
        "app.use": "app.use = function use(fn)",
        "res.send": "res.send = function send(body)",
        "proto.handle": "proto.handle = function handle(req, res, out)",
        "Router.route": "Router.prototype.route = function route(path)",
        "exports.compileETag": "exports.compileETag = function(val)",
        "app[method]": "methods.forEach(function(method){ app[method] = function(path)",
        "res.type": "res.contentType = res.type = function contentType(type)",
    }
    assert by_symbol(chunks, "app.use").text.startswith("/**\n * Proxy `Router#use()`")
    assert "function router(req, res, next)" in by_symbol(chunks, "router").text  # nested: stays inside
    assert by_symbol(chunks, "app[method]").text.splitlines()[-1] == "});"
    assert {c.imports for c in chunks} == {("methods",)}


def test_module_exports_names():
    src = (
        "/**\n"
        " * Create an express application.\n"
        " */\n"
        "module.exports = function(options) {\n"  # 4: anonymous: the file's stem
        "  return options;\n"
        "};\n"
        "\n"
        "module.exports.Router = function Router() {};\n"  # 8: member of the exports: a function
        "exports = module.exports = class {\n"  # 9: an anonymous class: the stem too
        "  listen() {\n"
        "    return 1;\n"
        "  }\n"
        "};\n"
    )
    chunks = chunks_ok("lib/express.js", src)
    assert spans(chunks) == [
        ("function", "express", 1, 6),
        ("function", "module.exports.Router", 8, 8),
        ("class", "express", 9, 13),
        ("method", "express.listen", 10, 12),
    ]
    assert [(c.kind, c.symbol) for c in chunks_ok("index.js", src)][0] == ("function", "index")
    assert [(c.kind, c.symbol) for c in chunks_ok("lib/body-parser.min.js", src)][0] == ("function", "body-parser")


def test_assignment_targets():
    src = (
        "app['del'] = function(path) {\n"  # 1: a string key reads as a property
        "  return this;\n"
        "};\n"
        "Route.prototype[method] = () => {\n"  # 4: computed: as written, .prototype dropped
        "  return 1;\n"
        "};\n"
        "handler = function () {\n"  # 7: a plain name: a function
        "  return 2;\n"
        "};\n"
        "View.Engine = class Engine extends Base {\n"  # 10: a class expression
        "  render() { return 3; }\n"
        "};\n"
        "[a, b] = [function () {}, 1];\n"  # 13: destructuring: module code
        "app.locals = { x: 1 };\n"  # 14: not a function: module code
    )
    chunks = chunks_ok("lib/app.js", src)
    assert spans(chunks) == [
        ("method", "app.del", 1, 3),
        ("method", "Route[method]", 4, 6),
        ("function", "handler", 7, 9),
        ("class", "View.Engine", 10, 12),
        ("method", "View.Engine.render", 11, 11),
        ("module", "<module>", 13, 14),
    ]
    assert by_symbol(chunks, "View.Engine").signature == "View.Engine = class Engine extends Base"


def test_callbacks_holding_several_assignments_are_scopes():
    src = (
        "/*! lib */\n"
        "(function (root) {\n"  # 2: an IIFE: its definitions get chunks, its other lines are module code
        "  var cache = {};\n"
        "\n"
        "  /** Look a name up. */\n"
        "  View.prototype.lookup = function lookup(name) {\n"  # 6
        "    return cache[name];\n"
        "  };\n"
        "\n"
        "  function helper() {\n"  # 10
        "    return 1;\n"
        "  }\n"
        "\n"
        "  View.prototype.render = function render(options) {\n"  # 14
        "    return helper(options);\n"
        "  };\n"
        "})(this);\n"
        "\n"
        "describe('app', function () {\n"  # 19: no function assignment in it: module code
        "  it('works', function () {\n"
        "    assert(true);\n"
        "  });\n"
        "});\n"
    )
    chunks = chunks_ok("lib/view.js", src)
    assert spans(chunks) == [
        ("module", "<module>", 1, 3),
        ("method", "View.lookup", 5, 8),
        ("function", "helper", 10, 12),
        ("method", "View.render", 14, 16),
        ("module", "<module>", 17, 23),
    ]


def test_typescript_assignments():
    src = (
        'import express from "express";\n'
        "\n"
        "/**\n"
        " * Send a body.\n"
        " */\n"
        "res.send = function send(this: Response, body?: unknown): Response {\n"  # 6
        "  return this;\n"
        "};\n"
        "\n"
        "Store.prototype.get = async <T>(key: string): Promise<T> => {\n"  # 10
        "  return cache[key] as T;\n"
        "};\n"
        "\n"
        "module.exports = function (opts: Options) {\n"  # 14
        "  return opts;\n"
        "};\n"
    )
    chunks = chunks_ok("src/app.ts", src)
    assert spans(chunks) == [
        ("module", "<module>", 1, 1),
        ("method", "res.send", 3, 8),
        ("method", "Store.get", 10, 12),
        ("function", "app", 14, 16),
    ]
    sigs = {c.symbol: c.signature for c in chunks}
    assert sigs["res.send"] == "res.send = function send(this: Response, body?: unknown): Response"
    assert sigs["Store.get"] == "Store.prototype.get = async <T>(key: string): Promise<T> =>"
    assert chunks[0].imports == ("express",)
