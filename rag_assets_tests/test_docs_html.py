"""html_to_text: keep headings, code (with language), tables, lists, link text; drop chrome."""

from __future__ import annotations

from rag_assets.sources.docs.html_to_text import html_to_text, markdown_title
from rag_assets.sources.docs.pages import page_text
from rag_assets_tests.docsite import API, GUIDE, INSTALL, chrome


def test_keeps_headings_code_and_tables():
    c = html_to_text(chrome("Install", INSTALL))
    assert c.title == "Install"
    assert c.text.startswith("# Install\n")
    assert "## Requirements" in c.text and "## Options" in c.text
    assert "```bash\npip install mylib==1.2\nmylib --version\n```" in c.text  # Sphinx highlight-bash
    assert "| Option | Default | Meaning |" in c.text and "| timeout_s | 30 | Request timeout |" in c.text
    api = html_to_text(chrome("API", API)).text
    assert '```python\nfrom mylib import Client\n\nclient = Client(url="http://localhost")' in api
    assert "| search | list of hits |" in api  # header row inferred for a table without <thead>


def test_drops_chrome_so_themes_give_identical_text():
    a = html_to_text(chrome("Guide", GUIDE, variant=0)).text
    b = html_to_text(chrome("Guide", GUIDE, variant=1)).text
    assert a == b
    for noise in ("Home", "Privacy", "cookies", "Accept", "analytics", "margin", "Edit on GitHub", "Search"):
        assert noise not in a
    assert "- Sources are partitions" in a


def test_links_images_lists_and_anchor_marks():
    html = ('<html><head><title>T — Site</title></head><body><h1>Title<a class="headerlink" href="#t">¶</a></h1>'
            '<p>See <a href="https://x.invalid/doc">the docs</a> and <code>snake_case_name</code> '
            '<img src="a.png" alt="pic">.</p><ol><li>one</li><li>two</li></ol>'
            '<pre><code class="lang-js">let a = 1;</code></pre><pre>plain</pre></body></html>')
    c = html_to_text(html)
    assert c.title == "Title"
    assert "# Title\n" in c.text and "¶" not in c.text
    assert "See the docs and `snake_case_name`" in c.text and "x.invalid" not in c.text and "a.png" not in c.text
    assert "1. one\n2. two" in c.text
    assert "```js\nlet a = 1;\n```" in c.text and "```\nplain\n```" in c.text


def test_title_falls_back_to_title_tag_and_bytes_charset():
    c = html_to_text("<html><head><meta charset='latin-1'><title>Caf\xe9 page</title></head>"
                     "<body><p>Hello</p></body></html>".encode("latin-1"))
    assert c.title == "Café page" and c.text == "Hello\n"


def test_page_text_for_markdown_and_sniffed_html():
    title, text = page_text(b"# Hello\r\n\r\n\r\n\r\nBody  \n", "text/markdown", None)
    assert title == "Hello" and text == "# Hello\n\nBody\n"
    title, text = page_text(b"<!DOCTYPE html><html><body><h1>H</h1></body></html>", "text/plain", None)
    assert title == "H" and text == "# H\n"
    assert markdown_title("Intro\n=====\n\ntext") == "Intro"


def test_layout_wrappers_with_chrome_like_classes_are_kept():
    html = ('<html><body><header><h1>Page title</h1></header>'
            '<div class="with-sidebar"><div class="sidebar-menu">menu item</div><p>Body text.</p></div>'
            '<footer>legal</footer></body></html>')
    c = html_to_text(html)
    assert c.text == "# Page title\n\nBody text.\n"
