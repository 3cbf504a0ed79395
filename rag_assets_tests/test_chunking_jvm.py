"""Java and Kotlin chunking on real tree-sitter grammars."""

from __future__ import annotations

from .test_chunking_syntax import by_symbol, chunks_ok, spans

JAVA = """\
package com.example.app;

import java.util.List;
import java.util.function.Function;
import static java.lang.Math.max;

/**
 * The outer class.
 */
@Deprecated
public class Outer<T extends Comparable<T>> extends Base implements Runnable {
    private final List<T> items;

    /** Makes one. */
    public Outer(List<T> items) {
        this.items = items;
    }

    @Override
    public void run() {
        Runnable r = new Runnable() {
            @Override
            public void run() {}
        };
        items.forEach(i -> System.out.println(i));
    }

    public <R> List<R> map(Function<T, R> f) { return null; }

    static class Inner {
        /** Deep. */
        int depth() {
            return max(1, 2);
        }
    }

    enum Color {
        RED, GREEN;

        Color next() {
            return GREEN;
        }
    }
}

interface Shape {
    double area();

    default String name() {
        return "shape";
    }
}

record Point(int x, int y) {
    Point {
        if (x < 0) throw new IllegalArgumentException();
    }
}
"""


def test_java():
    chunks = chunks_ok("src/main/java/com/example/app/Outer.java", JAVA)
    assert spans(chunks) == [
        ("module", "<module>", 1, 5),
        ("class", "Outer", 7, 44),  # Javadoc + @Deprecated included
        ("method", "Outer.Outer", 14, 17),  # constructor
        ("method", "Outer.run", 19, 26),  # @Override; the anonymous class stays inside
        ("method", "Outer.map", 28, 28),  # generic method
        ("class", "Outer.Inner", 30, 35),  # nested class: Outer.Inner.m
        ("method", "Outer.Inner.depth", 31, 34),
        ("enum", "Outer.Color", 37, 43),
        ("method", "Outer.Color.next", 40, 42),
        ("interface", "Shape", 46, 52),
        ("method", "Shape.name", 49, 51),  # default method; abstract area() has no body
        ("class", "Point", 54, 58),  # record
        ("method", "Point.Point", 55, 57),  # compact constructor
    ]
    assert chunks[0].imports == ("java.util.List", "java.util.function.Function", "java.lang.Math.max")
    outer = by_symbol(chunks, "Outer")
    assert outer.signature == "public class Outer<T extends Comparable<T>> extends Base implements Runnable"
    assert outer.text == (
        "/**\n"
        " * The outer class.\n"
        " */\n"
        "@Deprecated\n"
        "public class Outer<T extends Comparable<T>> extends Base implements Runnable {\n"
        "    private final List<T> items;\n"
        "\n"
        "    public Outer(List<T> items) { ... }\n"
        "\n"
        "    @Override\n"
        "    public void run() { ... }\n"
        "\n"
        "    public <R> List<R> map(Function<T, R> f) { return null; }\n"
        "\n"
        "    static class Inner { ... }\n"
        "\n"
        "    enum Color { ... }\n"
        "}"
    )
    run = by_symbol(chunks, "Outer.run")
    assert run.signature == "public void run()"  # annotations are not part of the signature
    assert run.text.startswith("    @Override\n    public void run() {")
    assert by_symbol(chunks, "Outer.Inner.depth").text.startswith("        /** Deep. */")


KOTLIN = """\
package com.example.geo

import kotlin.math.sqrt
import java.util.*

/** A point. */
@Serializable
data class Point(val x: Double, val y: Double) : Shape {
    val norm: Double
        get() = sqrt(x * x + y * y)

    override fun area(): Double {
        return 0.0
    }

    companion object {
        val ORIGIN = Point(0.0, 0.0)

        fun of(x: Int, y: Int): Point = Point(x.toDouble(), y.toDouble())
    }
}

object Registry {
    private val shapes = mutableListOf<Shape>()

    fun register(s: Shape) {
        shapes.add(s)
    }
}

interface Shape {
    fun area(): Double
}

enum class Color {
    RED,
    GREEN;

    fun next(): Color = GREEN
}

/** Doubles it. */
fun Point.scaled(k: Double): Point = Point(x * k, y * k)

fun <T> List<T>.second(): T {
    return this[1]
}
"""


def test_kotlin():
    chunks = chunks_ok("src/main/kotlin/Point.kt", KOTLIN)
    assert spans(chunks) == [
        ("module", "<module>", 1, 4),
        ("class", "Point", 6, 21),  # KDoc + annotation; data class
        ("method", "Point.area", 12, 14),
        ("class", "Point.Companion", 16, 20),  # companion object
        ("method", "Point.Companion.of", 19, 19),
        ("class", "Registry", 23, 29),  # object
        ("method", "Registry.register", 26, 28),
        ("interface", "Shape", 31, 33),
        ("enum", "Color", 35, 40),
        ("method", "Color.next", 39, 39),
        ("method", "Point.scaled", 42, 43),  # extension function: Receiver.name
        ("method", "List.second", 45, 47),  # generic receiver
    ]
    assert chunks[0].imports == ("kotlin.math.sqrt", "java.util.*")
    assert by_symbol(chunks, "Point").signature == "data class Point(val x: Double, val y: Double) : Shape"
    assert by_symbol(chunks, "Point.scaled").signature == "fun Point.scaled(k: Double): Point"
    assert by_symbol(chunks, "Point").text.endswith(
        "    override fun area(): Double { ... }\n\n    companion object { ... }\n}")
