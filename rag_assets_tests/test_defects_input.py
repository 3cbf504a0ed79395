"""Input-side defects of issue 12, each reproduced: secrets inside ordinary files, credential files,
an unreachable docs host reported as "robots disallowed", a binary page labelled HTML, a minified
bundle without `.min.js`, a newline in a file name."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from rag_assets.chunking import chunk_file_with_status, split_lines
from rag_assets.chunking.documents import build_chunks
from rag_assets.chunking.secrets import redact_secrets
from rag_assets.contract import citation
from rag_assets.sources.config import Source
from rag_assets.sources.docs import DocsError, download_library
from rag_assets.sources.docs.pages import binary_body
from rag_assets.sources.readers import FetchContext, GitReader
from rag_assets_tests.docsite import DocSite, Resp, chrome, dead_proxy_url, fast_fetcher
from rag_assets_tests.gitrepo import make_repo

# Well-known shapes (AWS's own documentation example key), assembled so that this file holds none.
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
KEY_BODY = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
            "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo"]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----"
GITHUB_TOKEN = "ghp_" + "R4nd0mT0kenValue1234567890abcdefABCD"
SLACK_TOKEN = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"

SETTINGS_PY = f'''"""Deployment settings."""

AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
REGION = "eu-west-1"

SIGNING_KEY = """{PRIVATE_KEY}
"""


def bucket_url(name):
    """The S3 address of a bucket in our region."""
    return f"https://{{name}}.s3.{{REGION}}.amazonaws.com"
'''


def _secret_texts() -> list[str]:
    return [AWS_KEY_ID, AWS_SECRET, *KEY_BODY, GITHUB_TOKEN, SLACK_TOKEN]


def _git_docs(tmp_path: Path, files: dict, name: str = "demo"):
    """A real repository fetched by the git reader: its documents as chunking reads them."""
    make_repo(tmp_path / name, files)
    reader = GitReader()
    fetched = reader.fetch(Source(name, "git", str(tmp_path / name)), FetchContext(tmp_path / "data"))
    return reader.documents(fetched.table)


# ------------------------------------------------------------------ 1. secrets inside ordinary files
def test_redact_secrets_keeps_every_line_and_counts_kinds():
    text = (f"id = {AWS_KEY_ID}\r\naws_secret_access_key={AWS_SECRET}\n{PRIVATE_KEY}\n"
            f"gh: {GITHUB_TOKEN}\nslack = '{SLACK_TOKEN}'\nkeep = 'this line'\n")
    out, found = redact_secrets(text)
    assert dict(found) == {"aws-access-key": 1, "aws-secret-key": 1, "private-key": 1, "github-token": 1,
                           "slack-token": 1}
    assert not any(s in out for s in _secret_texts())
    lines, new = split_lines(text), split_lines(out)
    assert len(new) == len(lines)  # line numbers, hence citations, stay exact
    assert new[:2] == ["id = [REDACTED aws-access-key]", "aws_secret_access_key=[REDACTED aws-secret-key]"]
    assert new[2:7] == ["-----BEGIN RSA PRIVATE KEY-----", "[REDACTED private-key]", "", "",
                        "-----END RSA PRIVATE KEY-----"]
    assert new[-1] == "keep = 'this line'" and out.count("\r\n") == 1


@pytest.mark.parametrize("kind, secret, line", [
    ("aws-access-key", "ASIA" + "Y34FZKBOKMUTVV7A", "key_id: {s}"),
    ("aws-secret-key", AWS_SECRET, '{{"secretAccessKey": "{s}"}}'),
    ("private-key", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
     "-----BEGIN OPENSSH PRIVATE KEY-----\n{s}\n-----END OPENSSH PRIVATE KEY-----"),
    ("private-key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",  # a JSON service-account file
     '{{"private_key": "-----BEGIN PRIVATE KEY-----\\n{s}\\n-----END PRIVATE KEY-----\\n"}}'),
    ("github-token", "github_pat_" + "11ABCDEFG0123456789_" + "a" * 62, "token={s}"),
    ("gitlab-token", "glpat-" + "x" * 20, "GITLAB_TOKEN={s}"),
    ("slack-webhook", "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/" + "a1" * 12, "url: {s}"),
    ("google-api-key", "AIza" + "SyA1234567890abcdefghijklmnopqrstuv", "key = '{s}'"),
    ("stripe-key", "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe.api_key = '{s}'"),
    ("npm-token", "npm_" + "a" * 36, "//registry.npmjs.org/:_authToken={s}"),
])
def test_redact_secrets_knows_each_kind(kind, secret, line):
    text = line.format(s=secret) + "\nnext line\n"
    out, found = redact_secrets(text)
    assert dict(found) == {kind: 1} and secret not in out and f"[REDACTED {kind}]" in out
    assert out.endswith("\nnext line\n") and out.count("\n") == text.count("\n")


@pytest.mark.parametrize("text", [
    'password = "hunter2"',  # generic assignments: too noisy, left alone
    'if pem.startswith("-----BEGIN RSA PRIVATE KEY-----"):',  # code about keys, no key
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",  # a placeholder body
    "XAKIAIOSFODNN7EXAMPLEX",  # inside a longer token
    "secret_key = 'a' * 40",
    "ghp_short",
])
def test_redact_secrets_leaves_lookalikes(text):
    assert redact_secrets(text) == (text, {})


def test_redact_secrets_scans_a_megabyte_quickly():
    code = Path(__file__).with_name("test_chunking_syntax.py").read_text()
    text = (code * (1_000_000 // len(code) + 1))[:1_000_000]
    redact_secrets(text)
    t0 = time.perf_counter()
    out, found = redact_secrets(text)
    elapsed = time.perf_counter() - t0
    assert out == text and not found
    assert elapsed < 1.0  # ~15 ms here; detect-secrets takes ~3.5 s per MB with 4 detectors


def test_secrets_in_a_git_file_are_redacted_in_chunks_and_counted(tmp_path):
    docs = _git_docs(tmp_path, {"deploy/settings.py": SETTINGS_PY, "README.md": "# Demo\n\nNothing secret.\n"})
    df, stats, _ = build_chunks("demo", docs, None)
    texts = "\n".join(df["text"])
    assert not any(s in texts for s in _secret_texts())
    assert dict(stats.secrets_redacted) == {"aws-access-key": 1, "aws-secret-key": 1, "private-key": 1}
    # the rest of the file is indexed, at its own lines
    assert 'REGION = "eu-west-1"' in texts and "def bucket_url(name):" in texts
    redacted = split_lines(redact_secrets(SETTINGS_PY)[0])
    assert len(redacted) == len(split_lines(SETTINGS_PY))
    for row in df[df["path"] == "deploy/settings.py"].itertuples():
        assert row.text == "\n".join(redacted[row.start_line - 1: row.end_line])
    [fn] = df[df["symbol"] == "bucket_url"].itertuples()
    assert split_lines(SETTINGS_PY)[fn.start_line - 1] == "def bucket_url(name):"


@pytest.mark.slow  # runs the Dagster jobs and embeds
def test_secrets_never_reach_the_index_end_to_end(env, tmp_path, capsys):
    from dagster import AssetKey

    from rag_assets.cli import main

    make_repo(tmp_path / "demo", {
        "deploy/settings.py": SETTINGS_PY,
        "a\nb.py": "def odd_name():\n    return 'file name with a newline'\n",
        "static/vendor-bundle.js": _bundle(),
        "app.js": "export function start() {\n  return 1;\n}\n",
    })
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo")})
    env.index("demo")
    capsys.readouterr()  # what indexing printed
    rec = env.instance.fetch_materializations(AssetKey("chunks"), limit=1).records[0]
    meta = {k: v.value for k, v in rec.asset_materialization.metadata.items()}
    assert meta["secrets_redacted"] == {"aws-access-key": 1, "aws-secret-key": 1, "private-key": 1}
    assert meta["skipped_minified"] == 1 and meta["files_indexed"] == 3

    for query in (AWS_KEY_ID, AWS_SECRET, KEY_BODY[1], "AWS_SECRET_ACCESS_KEY signing key"):
        assert main(["search", query, "--source", "demo", "--json", "--k", "10"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert hits and not any(s in h["text"] for h in hits for s in _secret_texts())
    assert any("[REDACTED aws-access-key]" in h["text"] and 'REGION = "eu-west-1"' in h["text"] for h in hits)
    assert not any(h["path"] == "static/vendor-bundle.js" for h in hits)

    # 6. the printed citation of a file whose name holds a newline stays on one line; JSON keeps the path
    assert main(["search", "odd_name file name with a newline", "--source", "demo", "--json", "--k", "1"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["path"] == "a\nb.py"
    assert main(["search", "odd_name file name with a newline", "--source", "demo", "--k", "1", "--no-text"]) == 0
    [line] = capsys.readouterr().out.rstrip("\n").split("\n")
    assert line.startswith(' 1. "a\\nb.py":1-2 @ ') and "odd_name" in line


# ------------------------------------------------------------------ 2. credential files
def test_credential_files_are_skipped_as_secret(tmp_path):
    files = {
        ".git-credentials": f"https://me:{GITHUB_TOKEN}@github.com\n",
        "ops/.aws/credentials": f"[default]\naws_access_key_id = {AWS_KEY_ID}\n",
        ".pgpass": "db:5432:app:app:hunter2\n",
        "deploy/.kube/config": "apiVersion: v1\nkind: Config\nusers: []\n",
        "deploy/kubeconfig": "apiVersion: v1\nkind: Config\n",
        "deploy/prod.kubeconfig": "apiVersion: v1\nkind: Config\n",
        "infra/terraform.tfstate": '{"version": 4, "resources": []}\n',
        "infra/old.tfstate.backup": '{"version": 4}\n',
        "keys/release.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF...\n-----END PGP PRIVATE KEY BLOCK-----\n",
        ".netrc": "machine example.com login me password hunter2\n",
        "id_rsa": "not really a key\n", "home/.ssh/id_ed25519": "nor this\n",
        "certs/server.pem": "pem\n", "certs/server.key": "key\n", ".env": "TOKEN=1\n",
        "pkg/kubeconfig.go": "package pkg\n\nfunc Load() {}\n",  # code about kubeconfigs: indexed
        "book/intro.asc": "== Introduction\n\nAsciiDoc, not a key.\n",  # AsciiDoc: indexed
    }
    docs = _git_docs(tmp_path, files)
    df, stats, _ = build_chunks("demo", docs, None)
    assert stats.skipped["secret"] == 15
    assert sorted(df["path"].unique()) == ["book/intro.asc", "pkg/kubeconfig.go"]


# ------------------------------------------------------------------ 3. an unreachable docs host
def test_unreachable_docs_host_is_reported_as_unreachable_not_robots(caplog):
    dead = dead_proxy_url()  # connection refused
    pages = [f"{dead}/guide.html", f"{dead}/api.html", "http://docs.no-such-host.invalid/index.html"]  # + DNS
    with caplog.at_level(logging.WARNING), fast_fetcher(max_retries=0) as f:
        df, stats = download_library("mylib", pages, None, f)
    assert dict(stats.failed_reasons) == {"host unreachable": 3}
    rows = dict(zip(df["url"], df["error"]))
    assert rows[f"{dead}/guide.html"].startswith(f"host unreachable: {dead}/robots.txt: connection error")
    assert "host unreachable 3" in stats.summary() and "robots" not in stats.summary()
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("pages")]
    unreachable = [m for m in lines if "unreachable" in m]
    assert len(unreachable) == 2  # one line per host, not per page
    assert all(m.startswith("source 'mylib': host ") and "/robots.txt" in m and "\n" not in m for m in unreachable)
    assert not any("disallowed" in m for m in lines)

    # The whole source: one line naming the source, the URL and why.
    with fast_fetcher(max_retries=0) as f, pytest.raises(DocsError) as e:
        download_library("mylib", f"{dead}/sitemap.xml", None, f)
    msg = str(e.value)
    assert msg.startswith(f"source 'mylib': cannot fetch {dead}/sitemap.xml: host unreachable ") and "\n" not in msg


def test_robots_timeout_is_unreachable_and_404_allows():
    with DocSite() as site:
        site.routes["/robots.txt"] = lambda s, n: (s.sleep(2.0), Resp(b"", "text/plain"))[1]
        with fast_fetcher(max_retries=0) as f:
            r = f.fetch(site.url("/index.html"))
        assert r.error == "host unreachable" and "/robots.txt: timeout" in r.detail
        assert site.hits["/index.html"] == 0
        del site.routes["/robots.txt"]  # 404: no rules, everything allowed (RFC 9309)
        with fast_fetcher() as f:
            assert f.fetch(site.url("/index.html")).ok and f.fetch(site.url("/private/secret.html")).ok


# ------------------------------------------------------------------ 4. a binary page labelled HTML
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def test_binary_page_labelled_html_is_skipped_and_counted():
    with DocSite() as site:
        site.routes["/photo.html"] = Resp(PNG, "text/html; charset=utf-8")
        site.routes["/nul.html"] = Resp(b"<html>" + b"\x00\x01\x02\x03" * 500, "text/html")
        site.routes["/garbage.html"] = Resp(bytes(range(0x80, 0x100)) * 40, "text/html; charset=utf-8")
        legacy = chrome("Руководство", "<p>Привет, мир: документация.</p>").decode()  # no false alarm
        site.routes["/cyrillic.html"] = Resp(legacy.replace('charset="utf-8"', 'charset="windows-1251"')
                                             .encode("cp1251", errors="replace"), "text/html")
        urls = [site.url(p) for p in ("/photo.html", "/nul.html", "/garbage.html", "/cyrillic.html", "/index.html")]
        with fast_fetcher() as f:
            df, stats = download_library("mylib", urls, None, f)
    rows = {u.rsplit("/", 1)[-1]: r for u, r in zip(df["page_id"], df.to_dict("records"))}
    assert dict(stats.failed_reasons) == {"binary content": 3} and stats.fetched == 2
    assert rows["photo.html"]["error"] == "binary content: text/html but the body is a PNG image"
    assert rows["nul.html"]["error"].endswith("NUL bytes")
    assert rows["garbage.html"]["error"].endswith("mostly invalid UTF-8")
    assert all(rows[p]["text"] == "" for p in ("photo.html", "nul.html", "garbage.html"))
    assert rows["cyrillic.html"]["status"] == "fetched" and rows["cyrillic.html"]["text"]


def test_binary_body_sniffing():
    assert binary_body(PNG) == "a PNG image"
    assert binary_body("<p>é</p>".encode("utf-16"), None) is None  # UTF-16 text has NULs, and is text
    assert binary_body("<p>é</p>".encode("utf-16-le"), "UTF-16LE") is None
    assert binary_body("<p>café</p>".encode("latin-1"), None) is None
    assert binary_body("<p>café</p>".encode("latin-1"), "utf-8") is None  # one bad byte is no majority
    assert binary_body(b"\x1b[1mbold\x1b[0m log line\n") is None
    assert binary_body(bytes(range(1, 32)) * 50) == "mostly control characters"


def test_binary_file_in_a_docs_folder_is_skipped(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Index\n\nHello.\n")
    (tmp_path / "docs" / "diagram.html").write_bytes(PNG)
    with fast_fetcher() as f:
        df, stats = download_library("lib", str(tmp_path / "docs"), None, f)
    assert dict(stats.failed_reasons) == {"binary content": 1}
    assert dict(zip(df["page_id"], df["error"]))["diagram.html"] == "binary content: the file is a PNG image"


# ------------------------------------------------------------------ 5. a minified bundle without .min.js
def _bundle() -> str:
    """A 674 KB one-line bundle, as in the report."""
    body = "".join(f'function f{i}(a,b){{var c=a+b*{i};if(c>{i}){{return c}}else{{return [a,b,"s{i}"]}}}};'
                   for i in range(8200))
    return "/*! app v1.0 | MIT */\n" + body[:674_000 - 23] + "\n"


def test_minified_bundle_without_min_js_is_skipped_not_chunked(tmp_path):
    bundle = _bundle()
    assert len(bundle) == 674_000 and bundle.count("\n") == 2
    before, status = chunk_file_with_status("static/js/vendor-bundle.js", bundle)
    assert status == "skipped" and len(before) > 500  # what flooded the index (the chunker's own guard)
    docs = _git_docs(tmp_path, {"static/js/vendor-bundle.js": bundle, "web/app.js": "export const a = 1;\n",
                                "docs/long-paragraphs.md": ("word " * 200 + "\n") * 60})
    df, stats, _ = build_chunks("demo", docs, None)
    assert stats.skipped["minified"] == 1 and stats.files_indexed == 2
    assert set(df["path"]) == {"web/app.js", "docs/long-paragraphs.md"}  # prose with long lines stays


# ------------------------------------------------------------------ 6. a newline in a file name
def test_newline_in_a_file_name_gives_a_one_line_citation(tmp_path):
    docs = _git_docs(tmp_path, {"a\nb.py": "def odd_name():\n    return 1\n", "ok.py": "x = 1\n"})
    df, _, _ = build_chunks("demo", docs, None)
    [row] = df[df["symbol"] == "odd_name"].itertuples()
    assert row.path == "a\nb.py"  # the real path, as JSON and the payload carry it
    cite = citation(row.path, row.start_line, row.end_line, row.commit)
    assert cite == f'"a\\nb.py":1-2 @ {row.commit[:12]}' and "\n" not in cite
    assert citation("ok.py", 1, 1, row.commit) == f"ok.py:1-1 @ {row.commit[:12]}"  # ordinary paths unchanged
    assert citation("docs/café.md", 1, 2, "c" * 40) == "docs/café.md:1-2 @ cccccccccccc"
    assert citation('say "hi"\t.txt', 1, 2, "c" * 40) == '"say \\"hi\\"\\t.txt":1-2 @ cccccccccccc'
