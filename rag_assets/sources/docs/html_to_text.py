"""HTML page -> Markdown-like text for chunking, via BeautifulSoup + markdownify.

Keeps what a coding agent needs (headings as `#`, fenced code with its language, pipe tables,
lists, link text) and drops site chrome (nav, header, footer, sidebars, cookie banners,
permalink anchors, scripts) so the same article under two themes gives the same text and
dedupes exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, Comment, Tag
from markdownify import MarkdownConverter

# Elements that never carry page content.
_DROP_TAGS = ["script", "style", "noscript", "template", "iframe", "svg", "canvas", "form",
              "button", "select", "input", "nav", "aside", "dialog", "link", "meta"]
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
# class/id words of chrome and of permalink anchors ("¶") that themes put in headings.
_CHROME = re.compile(
    r"(^|[-_ ])(cookie|cookies|consent|gdpr|onetrust|cc-window|cookiebar|skip-link|skip-to-content|"
    r"breadcrumbs?|navbar|sidebar|sidenav|toc|table-of-contents|headerlink|hash-link|anchorjs-link|"
    r"anchor-link|edit-this-page|edit-page|pagination|prev-next|feedback|announcement|banner|"
    r"site-header|site-footer|footer|header-anchor|copy-button|copybtn)($|[-_ ])", re.I)
_LANG = re.compile(r"(?:^|\s)(?:language|lang|highlight|sourcecode|brush:?)-?\s*([A-Za-z0-9_+#.-]+)", re.I)
_NOT_LANGS = {"default", "notranslate", "none", "text", "plain", "plaintext", "source", "highlight", "nohighlight"}


@dataclass(frozen=True)
class Converted:
    title: str
    text: str


def _code_language(pre: Tag) -> str:
    """Language from classes like language-py, lang-js, highlight-python (Sphinx) or data-lang."""
    nodes = [pre, *pre.find_all("code", limit=1)]
    nodes += [p for p in list(pre.parents)[:3] if isinstance(p, Tag)]
    for node in nodes:
        if node.get("data-lang"):
            return str(node["data-lang"]).lower()
        for cls in node.get("class") or []:
            m = _LANG.search(cls)
            if m and m.group(1).lower() not in _NOT_LANGS:
                return m.group(1).lower()
    return ""


class _Converter(MarkdownConverter):
    def convert_a(self, el, text, parent_tags):  # link text only: URLs are noise for search
        return text

    def convert_img(self, el, text, parent_tags):
        return ""


def _is_chrome(el: Tag) -> bool:
    if el.attrs is None:
        return False
    if (el.get("role") or "").lower() in _DROP_ROLES or el.has_attr("hidden"):
        return True
    words = " ".join([*(el.get("class") or []), el.get("id") or ""])
    return bool(words and _CHROME.search(words))


def _content_root(soup: BeautifulSoup) -> Tag:
    for sel in ("main", "[role=main]"):
        found = soup.select(sel)
        if len(found) == 1:
            return found[0]
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    return soup.body or soup


def _prose_len(el: Tag) -> int:
    """Characters of text outside links: menus are mostly links, articles mostly not."""
    return len(el.get_text(strip=True)) - sum(len(a.get_text(strip=True)) for a in el.find_all("a"))


def _clean_title(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" \u00b6#")


def html_to_text(html: str | bytes, charset: str | None = None) -> Converted:
    """Convert one HTML page; bytes are decoded by BeautifulSoup (meta charset aware)."""
    soup = BeautifulSoup(html, "html.parser", from_encoding=charset if isinstance(html, bytes) else None)
    root = _content_root(soup)
    # The article's <h1> is the cleanest title; <title> usually carries a " — Site" suffix.
    h1 = root.find("h1") or soup.find("h1")
    title = _clean_title(h1.get_text()) if h1 else ""
    if not title and soup.title:
        title = _clean_title(soup.title.get_text())
    for c in root.find_all(string=lambda s: isinstance(s, Comment)):
        c.extract()
    for el in root.find_all(_DROP_TAGS):
        el.decompose()
    # header/footer are chrome at page level but often hold the title inside an article.
    # An element holding the <h1>, a <main>/<article>, or most of the page's non-link text is a
    # layout wrapper (class="with-sidebar", <header><h1>Title</h1></header>), not chrome.
    total = _prose_len(root)

    def holds_content(el: Tag) -> bool:
        return (el.name in ("html", "body", "main", "article", "pre", "code")
                or bool(el.find(["h1", "main", "article"])) or _prose_len(el) > total / 2)

    for el in root.find_all(["header", "footer"]):
        if root.name not in ("main", "article") and not el.find_parent(["main", "article"]) \
                and not holds_content(el):
            el.decompose()
    for el in root.find_all(_is_chrome):
        if not el.decomposed and not holds_content(el):
            el.decompose()
    md = _Converter(heading_style="ATX", bullets="-", code_language_callback=_code_language,
                    escape_underscores=False, escape_asterisks=False, table_infer_header=True,
                    newline_style="backslash").convert_soup(root)
    return Converted(title=title, text=tidy(md))


def tidy(text: str) -> str:
    """Normalize newlines, strip trailing spaces, squeeze blank lines (outside nothing fancy)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    lines = [ln.rstrip() for ln in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + ("\n" if any(lines) else "")


def markdown_title(text: str) -> str:
    """First `# ` heading (or an RST title: a line underlined with = - ~ etc.)."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:200]):
        if line.startswith("# "):
            return _clean_title(line[2:])
        if i + 1 < len(lines) and line.strip() and re.fullmatch(r"([=\-~^*#])\1{2,}", lines[i + 1].strip()):
            return _clean_title(line)
    return ""
