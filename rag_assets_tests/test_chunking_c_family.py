"""C, C++ and C# chunking on real tree-sitter grammars."""

from __future__ import annotations

from .test_chunking_syntax import by_symbol, chunks_ok, spans

C = """\
#include <stdlib.h>
#include "list.h"

#define MAX 10

/* A node. */
struct node {
	int value;
	struct node *next;
};

typedef union {
	int i;
	float f;
} number;

enum color { RED, GREEN };

static int count;

/* Pushes a value. */
struct node *push(struct node *head, int value)
{
	struct node *n = malloc(sizeof *n);
	n->value = value;
	n->next = head;
	return n;
}

int main(void) { return 0; }
"""


def test_c():
    chunks = chunks_ok("src/list.c", C)
    assert spans(chunks) == [
        ("module", "<module>", 1, 4),
        ("struct", "node", 6, 10),
        ("struct", "number", 12, 15),  # typedef union { ... } number;
        ("enum", "color", 17, 17),
        ("module", "<module>", 19, 19),
        ("function", "push", 21, 28),  # the comment above it included
        ("function", "main", 30, 30),
    ]
    assert chunks[0].imports == ("stdlib.h", "list.h")
    assert by_symbol(chunks, "push").signature == "struct node *push(struct node *head, int value)"


H = """\
#ifndef LIST_H
#define LIST_H

#include <stddef.h>

/* Pushes a value. */
struct node *push(struct node *head, int value);
size_t length(const struct node *head);
void free_all(struct node *head);

#endif /* LIST_H */
"""


def test_c_header_prototypes_are_module_code():
    chunks = chunks_ok("include/list.h", H)
    assert spans(chunks) == [("module", "<module>", 1, 11)]  # include guard looked through
    assert chunks[0].imports == ("stddef.h",)


def test_c_header_holding_cpp_is_read_as_cpp():
    src = "#pragma once\nnamespace util {\nclass Timer {\n public:\n  void start() {\n    t_ = 0;\n  }\n  int t_;\n};\n}\n"
    chunks = chunks_ok("util/timer.h", src)  # .h is "c"; the C parse fails, the C++ one does not
    assert ("method", "util::Timer::start", 5, 7) in spans(chunks)
    assert {c.language for c in chunks} == {"c"}


CPP = """\
#include <memory>
#include "shape.hpp"

namespace geo {
namespace detail {

/// A shape.
template <typename T>
class Shape : public Base {
 public:
  explicit Shape(T size);
  virtual ~Shape() = default;

  T area() const {
    return size_ * size_;
  }

  bool operator==(const Shape& other) const { return size_ == other.size_; }

 private:
  struct Cache {
    int hits;
  };
  T size_;
};

}  // namespace detail

// Builds one.
template <typename T>
Shape<T>::Shape(T size) : size_(size) {}

int Canvas::draw(int x) {
  auto f = [](int v) { return v + 1; };
  return f(x);
}

}  // namespace geo

namespace a::b {
void helper() {}
}
"""


def test_cpp():
    chunks = chunks_ok("src/shape.cpp", CPP)
    assert spans(chunks) == [
        ("module", "<module>", 1, 5),
        ("class", "geo::detail::Shape", 7, 25),  # `///` doc + template line included
        ("method", "geo::detail::Shape::area", 14, 16),
        ("method", "geo::detail::Shape::operator==", 18, 18),
        ("struct", "geo::detail::Shape::Cache", 21, 23),
        ("module", "<module>", 27, 27),
        ("method", "geo::Shape::Shape", 29, 31),  # out-of-line constructor of a template
        ("method", "geo::Canvas::draw", 33, 36),  # out-of-line method: kind method; lambda inside
        ("module", "<module>", 38, 40),
        ("function", "a::b::helper", 41, 41),  # C++17 nested namespace
        ("module", "<module>", 42, 42),
    ]
    assert chunks[0].imports == ("memory", "shape.hpp")
    assert by_symbol(chunks, "geo::Canvas::draw").signature == "int Canvas::draw(int x)"
    assert by_symbol(chunks, "geo::detail::Shape").text == (
        "/// A shape.\n"
        "template <typename T>\n"
        "class Shape : public Base {\n"
        " public:\n"
        "  explicit Shape(T size);\n"
        "  virtual ~Shape() = default;\n"
        "\n"
        "  T area() const { ... }\n"
        "\n"
        "  bool operator==(const Shape& other) const { return size_ == other.size_; }\n"
        "\n"
        " private:\n"
        "  struct Cache { ... }\n"
        "  T size_;\n"
        "};"
    )


CS = """\
using System;
using System.Collections.Generic;
using Json = Newtonsoft.Json;

namespace App.Core
{
    /// <summary>A service.</summary>
    [Serializable]
    public partial class Service : IService
    {
        #region Fields
        private readonly List<string> _items = new();
        #endregion

        public int Count { get; private set; }

        /// <summary>Runs it.</summary>
        /// <param name="name">Who.</param>
        [Obsolete("use RunAsync")]
        public void Run(string name)
        {
            #region Body
            _items.Add(name);
            #endregion
        }

        public T Get<T>(int i) where T : class => default;

        public Service() { }

        private class Nested
        {
            void Tick() { }
        }
    }

    public interface IService
    {
        void Run(string name);
    }

    public enum Mode { Fast, Slow }

    public struct Pair { public int A; }
}
"""


def test_csharp():
    chunks = chunks_ok("src/Service.cs", CS)
    assert spans(chunks) == [
        ("module", "<module>", 1, 6),
        ("class", "App.Core.Service", 7, 35),  # XML doc + [Serializable]; partial class
        ("method", "App.Core.Service.Run", 17, 25),  # two `///` lines + [Obsolete]; #region inside
        ("method", "App.Core.Service.Get", 27, 27),  # generic, expression-bodied
        ("method", "App.Core.Service.Service", 29, 29),  # constructor
        ("class", "App.Core.Service.Nested", 31, 34),
        ("method", "App.Core.Service.Nested.Tick", 33, 33),
        ("interface", "App.Core.IService", 37, 40),
        ("enum", "App.Core.Mode", 42, 42),
        ("struct", "App.Core.Pair", 44, 44),
        ("module", "<module>", 45, 45),
    ]
    assert chunks[0].imports == ("System", "System.Collections.Generic", "Newtonsoft.Json")
    service = by_symbol(chunks, "App.Core.Service")
    assert service.signature == "public partial class Service : IService"
    # #region lines are plain lines of the class: nothing breaks around them.
    assert "        #region Fields\n        private readonly List<string> _items = new();\n        #endregion" in service.text
    assert "        [Obsolete(\"use RunAsync\")]\n        public void Run(string name) { ... }" in service.text
    assert by_symbol(chunks, "App.Core.Service.Run").signature == "public void Run(string name)"


def test_csharp_file_scoped_namespace():
    src = 'namespace Acme.Tools;\n\npublic record Tool(string Name)\n{\n    public string Describe() => $"tool {Name}";\n}\n'
    chunks = chunks_ok("Tool.cs", src)
    assert spans(chunks) == [
        ("module", "<module>", 1, 1),
        ("class", "Acme.Tools.Tool", 3, 6),
        ("method", "Acme.Tools.Tool.Describe", 5, 5),
    ]
