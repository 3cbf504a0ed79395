"""Go and Rust chunking on real tree-sitter grammars."""

from __future__ import annotations

from rag_assets.chunking import chunk_file

from .test_chunking_syntax import by_symbol, chunks_ok, spans

GO = """\
// Package cli runs commands.
package cli

import (
	"fmt"
	str "strings"
)

// DefaultName is used when none is given.
const DefaultName = "app"

// Command is one CLI command.
type Command struct {
	Name string
	Run  func(args []string) error
}

// Runner runs things.
type Runner interface {
	Execute() error
}

type (
	ID   int
	Name string
)

// Execute runs the command.
func (c *Command) Execute() error {
	handler := func(s string) string {
		return str.ToUpper(s)
	}
	fmt.Println(handler(c.Name))
	return nil
}

func (p Pair[K, V]) Key() K { return p.k }

// Map applies f.
func Map[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}
"""


def test_go():
    chunks = chunks_ok("cli/command.go", GO)
    assert spans(chunks) == [
        ("module", "<module>", 1, 10),  # package doc, imports, a documented const
        ("struct", "Command", 12, 16),  # `//` doc comment included
        ("interface", "Runner", 18, 21),
        ("module", "<module>", 23, 26),  # a grouped `type ( ... )` is module code
        ("method", "Command.Execute", 28, 35),  # pointer receiver -> Type.Method
        ("method", "Pair.Key", 37, 37),  # generic receiver
        ("function", "Map", 39, 46),
    ]
    assert chunks[0].imports == ("fmt", "strings")
    sigs = {c.symbol: c.signature for c in chunks}
    assert sigs["Command.Execute"] == "func (c *Command) Execute() error"
    assert sigs["Map"] == "func Map[T, U any](xs []T, f func(T) U) []U"
    assert sigs["Command"] == "type Command struct"
    # The closure stays in its method.
    assert "handler := func(s string) string {" in by_symbol(chunks, "Command.Execute").text


RS = """\
//! A tiny parser.
use std::collections::HashMap;
use std::fmt::{self, Display};

/// A parser over tokens.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Makes one.
    pub fn new(tokens: &'a [String]) -> Self {
        Parser { tokens, pos: 0 }
    }

    /** Parses everything. */
    #[inline]
    pub fn parse(&mut self) -> HashMap<String, usize> {
        let count = |s: &str| s.len();
        self.tokens.iter().map(|t| (t.clone(), count(t))).collect()
    }
}

impl Display for Parser<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Parser@{}", self.pos)
    }
}

pub trait Visitor {
    fn visit(&mut self, token: &str);
    fn done(&self) -> bool {
        true
    }
}

pub enum Token {
    Word(String),
    End,
}

mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert!(Parser::new(&[]).parse().is_empty());
    }
}
"""


def test_rust():
    chunks = chunks_ok("src/parser.rs", RS)
    assert spans(chunks) == [
        ("module", "<module>", 1, 3),
        ("struct", "Parser", 5, 10),  # `///` doc and #[derive] attribute included
        ("impl", "Parser", 12, 24),
        ("method", "Parser::new", 13, 16),
        ("method", "Parser::parse", 18, 23),  # `/** */` doc + #[inline]
        ("impl", "Parser", 26, 30),  # a trait impl: methods still qualify by the type
        ("method", "Parser::fmt", 27, 29),
        ("trait", "Visitor", 32, 37),
        ("method", "Visitor::done", 34, 36),  # a default method; `visit` has no body
        ("enum", "Token", 39, 42),
        ("module", "<module>", 44, 45),  # `mod tests {` and its use
        ("function", "tests::parses", 47, 50),
        ("module", "<module>", 51, 51),
    ]
    assert chunks[0].imports == ("std::collections::HashMap", "std::fmt::{self, Display}", "super::*")
    assert by_symbol(chunks, "Parser::parse").signature == "pub fn parse(&mut self) -> HashMap<String, usize>"
    assert chunks[5].signature == "impl Display for Parser<'_>"
    assert chunks[2].text == (
        "impl<'a> Parser<'a> {\n"
        "    pub fn new(tokens: &'a [String]) -> Self { ... }\n"
        "\n"
        "    #[inline]\n"
        "    pub fn parse(&mut self) -> HashMap<String, usize> { ... }\n"
        "}"
    )
    assert by_symbol(chunks, "Visitor").text == (
        "pub trait Visitor {\n    fn visit(&mut self, token: &str);\n    fn done(&self) -> bool { ... }\n}")


def test_rust_impl_for_a_reference_names_the_type():
    src = """impl<'de, 'a, R: Read<'de>> de::Deserializer<'de> for &'a mut Deserializer<R> {
    fn deserialize_bytes(self) -> u8 { 1 }
}
impl Bar for *const Baz { fn g() {} }
"""
    symbols = [(c.kind, c.symbol) for c in chunk_file("src/de.rs", src)]
    assert ("method", "Deserializer::deserialize_bytes") in symbols and ("impl", "Baz") in symbols
