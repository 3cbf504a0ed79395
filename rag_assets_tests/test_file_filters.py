import pytest

from rag_assets.sources.filters import (
    SKIP_REASONS,
    decode_text,
    glob_match,
    skip_reason_for_content,
    skip_reason_for_path,
)

# --- glob matcher --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, path, expected", [
    ("**/*.py", "a.py", True),
    ("**/*.py", "pkg/a.py", True),
    ("**/*.py", "pkg/sub/a.py", True),
    ("**/*.py", "a.pyc", False),
    ("*.py", "a.py", True),
    ("*.py", "pkg/a.py", False),  # `*` never crosses `/`
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/x/a.py", False),
    ("docs/**", "docs/a.md", True),
    ("docs/**", "docs/x/y/z.md", True),
    ("docs/**", "docsx/a.md", False),
    ("docs/**", "src/docs/a.md", False),  # anchored at the repo root
    ("**/docs/**", "src/docs/a.md", True),
    ("**/docs/**", "docs/a.md", True),
    ("a/**/b.txt", "a/b.txt", True),
    ("a/**/b.txt", "a/x/y/b.txt", True),
    ("a/**/b.txt", "ab.txt", False),
    ("**", "anything/at/all.txt", True),
    ("?.md", "a.md", True),
    ("?.md", "ab.md", False),
    ("?", "/", False),
    ("[ab].txt", "a.txt", True),
    ("[ab].txt", "c.txt", False),
    ("[!ab].txt", "c.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("x[!a]y", "x/y", False),  # a negated class does not match `/` either
    ("[a-c]*.rs", "b_main.rs", True),
    ("a[.txt", "a[.txt", True),  # unclosed bracket is a literal
    ("file.(1)+.txt", "file.(1)+.txt", True),  # regex metacharacters are literal
    ("a**b", "axxb", True),
    ("a**b", "ax/xb", False),  # `**` inside a name is a plain `*`
    ("/src/**", "src/a.py", True),
    ("./src/*.py", "src/a.py", True),
    ("*.PY", "a.py", False),  # case-sensitive, like git
])
def test_glob_match(pattern, path, expected):
    assert glob_match(pattern, path) is expected


# --- skip by path --------------------------------------------------------------------------


def reason(path, mode="100644", size=10, include=(), exclude=(), max_bytes=1_000_000):
    return skip_reason_for_path(path, mode, size, include, exclude, max_bytes)


@pytest.mark.parametrize("path", ["a.py", "src/pkg/mod.py", "README.md", "Makefile",
                                  "build.py", "env.py", "src/target.rs", ".env.example",
                                  ".env.sample", ".env.template", "id_rsa.pub",
                                  "docs/secret_sauce.md", "logo.svg", ".gitignore",
                                  # code about credentials is not a credential file
                                  "pkg/kubeconfig.go", "kubeconfig_test.go", "aws/credentials.py",
                                  "docs/book/chapter.asc", ".kube/config.md", "tfstate.py"])
def test_ordinary_files_are_indexed(path):
    assert reason(path) is None


def test_modes():
    assert reason("link", mode="120000") == "symlink"
    assert reason("lib/sub", mode="160000", size=0) == "submodule"
    assert reason("run.sh", mode="100755") is None


@pytest.mark.parametrize("path", [
    "node_modules/x.js", "web/node_modules/pkg/index.js", "vendor/lib.go", "third_party/a.c",
    "dist/app.js", "build/out.txt", ".venv/lib/x.py", "venv/x.py", "env/x.py",
    "lib/site-packages/x.py", "pkg/__pycache__/m.cpython-311.pyc", ".tox/x", ".mypy_cache/x",
    ".pytest_cache/v", "target/debug/x.rs", ".next/x.js", "coverage/index.html",
    "my_pkg.egg-info/PKG-INFO", "static/app.min.js", "static/app.min.css", "static/app.js.map",
    "package-lock.json", "web/yarn.lock", "poetry.lock", "Cargo.lock", "uv.lock",
    "pnpm-lock.yaml",
])
def test_vendored(path):
    assert reason(path) == "vendored"


@pytest.mark.parametrize("path", [
    ".env", "app/.env", ".env.local", ".env.production", "certs/server.pem", "tls.key",
    "store.p12", "cert.pfx", "id_rsa", "home/.ssh/id_ed25519", "id_dsa", "id_ecdsa",
    ".npmrc", ".pypirc", ".netrc", "credentials.json", "release.keystore", "secrets.yaml",
    "config/secrets.json",
    # credential files (issue 12): git, AWS, Postgres, Kubernetes, Terraform state, Docker
    ".git-credentials", "home/.git-credentials", ".aws/credentials", "ci/.aws/credentials", ".pgpass",
    ".kube/config", "deploy/kubeconfig", "prod.kubeconfig", "kubeconfig.yaml", "terraform.tfstate",
    "infra/prod.tfstate", "infra/terraform.tfstate.backup", "_netrc", ".htpasswd", ".docker/config.json",
    "id_ed25519_sk", "app.jks",
])
def test_secret(path):
    assert reason(path) == "secret"


@pytest.mark.parametrize("path", ["img/logo.png", "a.JPG", "f.woff2", "lib.so", "m.pyc",
                                  "p-1.0-py3-none-any.whl", "paper.pdf", "data.parquet",
                                  "archive.tar.gz", "model.safetensors"])
def test_binary_by_extension(path):
    assert reason(path) == "binary"


def test_size_limit():
    assert reason("big.txt", size=1_000_001) == "too_large"
    assert reason("ok.txt", size=1_000_000) is None
    assert reason("small.txt", size=11, max_bytes=10) == "too_large"


def test_include_exclude():
    inc, exc = ["src/**", "**/*.md"], ["src/gen/**"]
    assert reason("src/a.py", include=inc, exclude=exc) is None
    assert reason("README.md", include=inc, exclude=exc) is None
    assert reason("tests/t.py", include=inc, exclude=exc) == "not_included"
    assert reason("src/gen/x.py", include=inc, exclude=exc) == "excluded"  # exclude wins
    assert reason("anything.txt", exclude=["*.txt"]) == "excluded"


def test_rule_precedence():
    # Mode first (never follow a link, whatever its name), then user globs, then defaults.
    assert reason(".env", mode="120000") == "symlink"
    assert reason("node_modules/a.js", exclude=["**/*.js"]) == "excluded"
    assert reason("node_modules/.env") == "secret"
    assert reason("node_modules/a.js", include=["src/**"]) == "not_included"


def test_every_reason_is_declared():
    assert len(set(SKIP_REASONS)) == len(SKIP_REASONS) == 12  # "minified" added (issue 12)


# --- skip by content -----------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    (b"print('hi')\n", None),
    ("héllo wörld ✓\n".encode(), None),
    (b"\xef\xbb\xbfwith bom\n", None),
    (b"", "empty"),
    (b"  \n\t\r\n ", "empty"),
    (b"\xef\xbb\xbf\n", "empty"),
    (b"abc\x00def", "binary"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"a" * 9000 + b"\x00", None),  # NUL beyond the sniff window; still valid UTF-8
    (b"caf\xe9\n", "not_utf8"),  # latin-1
    (b"\xff\xfeh\x00i\x00", "binary"),  # UTF-16 has NULs
])
def test_skip_reason_for_content(data, expected):
    assert skip_reason_for_content(data) == expected


MINIFIED = ("var a=1;" * 2000).encode()  # 16 KB on one line


@pytest.mark.parametrize("path, data, expected", [
    ("lib/app.js", MINIFIED, "minified"),
    ("lib/app.js", b"// bundle\n" + MINIFIED, "minified"),
    ("data/fixture.json", MINIFIED, "minified"),
    ("notes.md", MINIFIED, None),  # prose: a paragraph per line is normal
    ("book/ch1.asc", MINIFIED, None),  # AsciiDoc
    ("nb.ipynb", MINIFIED, None),  # an image output is one long line
    ("small.js", b"var a=1;" * 500, None),  # 4 KB on one line: harmless
    ("app.js", b"var a = 1;\n" * 3000, None),  # ordinary code
    ("app.py", b"x = 1\n" * 60_000 + b"B = '" + b"A" * 400_000 + b"'\n", "minified"),  # one line is most of it
    ("app.py", b"x = 1\n" * 60_000 + b"B = '" + b"A" * 200_000 + b"'\n", None),  # one long line among many
    ("app.js", b"var a = 1;\r" * 3000, None),  # old Mac line ends are lines too
    ("KEYS.asc", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----\n", "secret"),
    ("keys/release.asc", b"\n-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQdGBF...\n", "secret"),
    ("book/ch1.asc", b"== Getting Started\n\nSee -----BEGIN PGP blocks.\n", None),
])
def test_skip_reason_for_content_by_path(path, data, expected):
    assert skip_reason_for_content(data, path) == expected


def test_decode_text():
    assert decode_text(b"\xef\xbb\xbfx = 1\n") == "x = 1\n"
    assert decode_text("é".encode()) == "é"
    with pytest.raises(UnicodeDecodeError):
        decode_text(b"\xe9")
