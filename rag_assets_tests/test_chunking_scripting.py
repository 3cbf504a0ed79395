"""Ruby, PHP, shell and Swift chunking on real tree-sitter grammars.

Ruby symbols follow Ruby's docs: ``Mod::Cls#method`` for instance methods, ``Mod::Cls.method``
for singleton methods (``def self.x`` and ``class << self``). PHP: ``Name\\Space\\Class::method``.
"""

from __future__ import annotations

from .test_chunking_syntax import by_symbol, chunks_ok, spans

RUBY = """\
# frozen_string_literal: true

require "json"
require_relative "store/version"

# Storage helpers.
module Store
  # A key-value cache.
  class Cache < Base
    include Enumerable
    attr_reader :size

    # Makes one.
    def initialize(size)
      @size = size
      @data = {}
    end

    def self.build = new(10)

    class << self
      def default
        @default ||= new(1)
      end
    end

    def each(&block)
      @data.each { |k, v| block.call(k, v) }
    end

    private def evict
      @data.shift
    end
  end

  def self.version
    VERSION
  end
end

def helper(x) = x * 2
"""


def test_ruby():
    chunks = chunks_ok("lib/store.rb", RUBY)
    assert spans(chunks) == [
        ("module", "<module>", 1, 4),
        ("module", "Store", 6, 39),  # a Ruby module: an outline, like a class
        ("class", "Store::Cache", 8, 34),
        ("method", "Store::Cache#initialize", 13, 17),  # `#` comment block included
        ("method", "Store::Cache.build", 19, 19),  # def self.x (endless)
        ("method", "Store::Cache.default", 22, 24),  # inside `class << self`
        ("method", "Store::Cache#each", 27, 29),  # the block stays inside
        ("method", "Store::Cache#evict", 31, 33),  # `private def ...`
        ("method", "Store.version", 36, 38),
        ("function", "helper", 41, 41),
    ]
    assert chunks[0].imports == ("json", "store/version")
    cache = by_symbol(chunks, "Store::Cache")
    assert cache.signature == "class Cache < Base"
    assert cache.text == (
        "  # A key-value cache.\n"
        "  class Cache < Base\n"
        "    include Enumerable\n"
        "    attr_reader :size\n"
        "\n"
        "    def initialize(size) ... end\n"
        "\n"
        "    def self.build = new(10)\n"
        "\n"
        "    class << self\n"
        "      def default ... end\n"
        "    end\n"
        "\n"
        "    def each(&block) ... end\n"
        "\n"
        "    private def evict ... end\n"
        "  end"
    )


PHP = """\
<?php

declare(strict_types=1);

namespace App\\Models;

use Illuminate\\Database\\Eloquent\\Model;
use App\\Contracts\\{HasName, HasEmail};
require_once __DIR__ . '/helpers.php';

/**
 * A user.
 */
#[Table('users')]
final class User extends Model implements HasName
{
    use HasFactory;

    private string $name;

    /** Saves it. */
    public function save(array $options = []): bool
    {
        return parent::save($options);
    }

    public static function make(string $name): static { return new static(); }
}

interface Repository
{
    public function find(int $id): ?User;
}

trait Greets
{
    public function greet(): string
    {
        return "hi";
    }
}

function helper(int $x): int
{
    return $x * 2;
}
"""


def test_php():
    chunks = chunks_ok("app/Models/User.php", PHP)
    assert spans(chunks) == [
        ("module", "<module>", 1, 9),
        ("class", "App\\Models\\User", 11, 28),  # docblock + #[Table] attribute
        ("method", "App\\Models\\User::save", 21, 25),
        ("method", "App\\Models\\User::make", 27, 27),
        ("interface", "App\\Models\\Repository", 30, 33),
        ("trait", "App\\Models\\Greets", 35, 41),
        ("method", "App\\Models\\Greets::greet", 37, 40),
        ("function", "App\\Models\\helper", 43, 46),
    ]
    assert chunks[0].imports == (
        "Illuminate\\Database\\Eloquent\\Model", "App\\Contracts\\HasName", "App\\Contracts\\HasEmail", "/helpers.php")
    user = by_symbol(chunks, "App\\Models\\User")
    assert user.signature == "final class User extends Model implements HasName"
    assert "    public function save(array $options = []): bool { ... }" in user.text


SHELL = """\
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Prints usage.
usage() {
  echo "usage: $0 <env>"
}

function deploy {
  local env="$1"
  rsync -a build/ "host-$env:/srv"
}

main() { deploy "${1:-prod}"; }

main "$@"
"""


def test_shell():
    chunks = chunks_ok("scripts/deploy.sh", SHELL)
    assert spans(chunks) == [
        ("module", "<module>", 1, 3),
        ("function", "usage", 5, 8),
        ("function", "deploy", 10, 13),
        ("function", "main", 15, 15),
        ("module", "<module>", 17, 17),
    ]
    assert {c.language for c in chunks} == {"shell"}
    assert chunks[0].imports == ('$(dirname "$0")/lib.sh',)


SWIFT = """\
import Foundation
import SwiftUI

/// A store.
@MainActor
public final class Store<Item: Codable>: ObservableObject {
    @Published var items: [Item] = []

    init(items: [Item]) {
        self.items = items
    }

    /// Adds one.
    func add(_ item: Item) {
        items.append(item)
    }
}

extension Store: CustomStringConvertible {
    public var description: String { "Store(\\(items.count))" }

    func clear() {
        items.removeAll()
    }
}

protocol Loader {
    func load() async throws -> Data
}

struct Point {
    var x: Double

    mutating func move(by dx: Double) {
        x += dx
    }
}

enum Mode {
    case fast, slow

    func next() -> Mode { .slow }
}

func makeStore() -> Store<String> {
    let sort = { (a: String, b: String) in a < b }
    return Store(items: ["b", "a"].sorted(by: sort))
}
"""


def test_swift():
    chunks = chunks_ok("Sources/Store.swift", SWIFT)
    assert spans(chunks) == [
        ("module", "<module>", 1, 2),
        ("class", "Store", 4, 17),  # `///` doc + @MainActor
        ("method", "Store.init", 9, 11),
        ("method", "Store.add", 13, 16),
        ("impl", "Store", 19, 25),  # extension Store: methods are Store.x
        ("method", "Store.clear", 22, 24),
        ("interface", "Loader", 27, 29),  # protocol
        ("struct", "Point", 31, 37),
        ("method", "Point.move", 34, 36),
        ("enum", "Mode", 39, 43),
        ("method", "Mode.next", 42, 42),
        ("function", "makeStore", 45, 48),  # the closure stays inside
    ]
    assert chunks[0].imports == ("Foundation", "SwiftUI")
    assert by_symbol(chunks, "Store").signature == "public final class Store<Item: Codable>: ObservableObject"
    assert chunks[4].signature == "extension Store: CustomStringConvertible"
