"""Skip rules for files found in a git tree. Pure functions: no I/O, no git.

Two stages, so the cheap one can run on the whole tree listing before any blob is read:
- ``skip_reason_for_path``: decided from the tree entry alone (path, mode, size);
- ``skip_reason_for_content``: decided from the blob bytes (and the path, for what long lines mean).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

SKIP_REASONS = (
    "excluded",
    "not_included",
    "symlink",
    "submodule",
    "too_large",
    "binary",
    "not_utf8",
    "empty",
    "vendored",
    "generated",
    "secret",
    "minified",
)

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
BINARY_SNIFF_BYTES = 8192  # same window git itself uses to call a file binary

# Directory names that hold third-party or generated code (any segment of the path).
VENDORED_DIRS = frozenset({
    "node_modules", "vendor", "third_party", "dist", "build", ".venv", "venv", "env",
    "site-packages", "__pycache__", ".git", ".tox", ".mypy_cache", ".pytest_cache",
    "target", ".next", "coverage",
    # other ecosystems' dependency and build output folders
    "bower_components", "jspm_packages", ".yarn", ".pnpm-store", ".gradle", ".dart_tool", "pods",
    "carthage", "deriveddata", ".build", ".nuxt", ".svelte-kit", ".turbo", ".parcel-cache",
})
VENDORED_DIR_SUFFIXES = (".egg-info",)
GENERATED_FILE_SUFFIXES = (".min.js", ".min.css", ".map")
# Code generators' output, by file name: protobuf/gRPC stubs, `*_generated.*`, designer files...
GENERATED_NAME_RE = re.compile(
    r"(\.pb\.(go|cc|h|c|swift|rs)|_pb2(_grpc)?\.pyi?|\.pb\.gw\.go|_grpc\.pb\.go|\.g\.dart|\.freezed\.dart"
    r"|\.designer\.cs|\.g\.cs|\.min\.mjs|\.bundle\.js|\.chunk\.js"
    r"|[._-]generated(\.[a-z0-9]+)+|^generated_[^/]*|_gen\.go|\.gen\.(go|ts|js))$")
# Type-declaration bundles (`index.d.ts` of a whole library) are generated; small ones are hand-written.
MAX_DECLARATION_BYTES = 200_000
LOCK_FILES = frozenset({
    "package-lock.json", "yarn.lock", "poetry.lock", "cargo.lock", "uv.lock", "pnpm-lock.yaml",
    "pipfile.lock", "gemfile.lock", "composer.lock", "npm-shrinkwrap.json",
})

# Credential files: private keys, tokens and passwords are what they hold (skip reason "secret").
SECRET_NAMES = frozenset({
    ".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", ".npmrc", ".pypirc",
    ".netrc", "_netrc", "credentials.json", ".git-credentials", ".pgpass", ".htpasswd", ".dockercfg", ".s3cfg",
    "application_default_credentials.json", "kubeconfig", "kubeconfig.yaml", "kubeconfig.yml", "terraform.tfstate",
})
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".keystore", ".jks", ".kubeconfig", ".tfstate",
                   ".tfstate.backup")
# `.asc` is an armored PGP key (or signature) or an AsciiDoc page (Pro Git's chapters): told by content.
ARMORED_EXTENSION, ARMOR_START = "asc", "-----BEGIN PGP "
# Credential files known by their folder: ~/.aws/credentials, ~/.kube/config, ~/.docker/config.json.
SECRET_PATH_SUFFIXES = (".aws/credentials", ".kube/config", ".docker/config.json")
_SECRET_PATH_TAILS = tuple("/" + p for p in SECRET_PATH_SUFFIXES)
# `.env.example` and friends are committed on purpose, to document settings.
ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template"})

# Minified / generated-looking content (a bundle without `.min.js` in its name): lines that average
# over MINIFIED_AVG_LINE characters, or one line holding most of a big file. Such a file would
# flood the index with hundreds of windows of noise (a 674 KB one-line bundle made 559 chunks).
MINIFIED_MIN_CHARS = 10_000  # a small one-line file is harmless
MINIFIED_AVG_LINE = 500
MINIFIED_LONG_LINE = 100_000
# Prose, where a paragraph per line is normal, and notebooks (an image output is one long line).
LONG_LINES_OK_EXTENSIONS = frozenset({"md", "markdown", "mdx", "mdown", "rst", "rest", "txt", "text", "adoc", "asc",
                                      "asciidoc", "tex", "org", "ipynb"})

# Extensions whose content is never text worth indexing; saves reading the blob.
BINARY_EXTENSIONS = frozenset("""
    png jpg jpeg gif bmp ico icns webp tif tiff psd heic avif
    zip tar gz tgz bz2 xz zst 7z rar jar war ear apk dmg iso deb rpm
    ttf otf woff woff2 eot
    so dll dylib exe bin o a lib obj class pyc pyo pyd whl egg wasm
    pdf doc docx xls xlsx ppt pptx odt ods odp
    parquet avro orc feather arrow npy npz pkl pickle h5 hdf5 pt pth onnx safetensors ckpt
    db sqlite sqlite3
    mp3 mp4 m4a wav ogg flac avi mov mkv webm
""".split())


def skip_reason_for_path(
    path: str,
    mode: str,
    size: int,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int = 1_000_000,
) -> str | None:
    """Reason to skip a tree entry, or None to index it. First matching rule wins."""
    # Never follow links: the target may lie outside the repository (e.g. /etc/passwd).
    if mode == MODE_SYMLINK:
        return "symlink"
    if mode == MODE_SUBMODULE:
        return "submodule"
    if any(glob_match(p, path) for p in exclude):
        return "excluded"
    if include and not any(glob_match(p, path) for p in include):
        return "not_included"
    if is_secret_path(path):
        return "secret"
    if is_vendored_path(path):
        return "vendored"
    if is_generated_path(path, size):
        return "generated"
    if _extension(path) in BINARY_EXTENSIONS:
        return "binary"
    if size > max_bytes:
        return "too_large"
    return None


def skip_reason_for_content(data: bytes, path: str = "") -> str | None:
    """Reason to skip a blob from its bytes: "empty", "binary", "not_utf8", "secret" (an armored PGP
    `.asc`) or "minified"; else None.

    `path` (any path the blob has) tells prose, where long lines are normal, from code."""
    if not data.strip():
        return "empty"
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return "binary"
    try:
        text = decode_text(data)
    except UnicodeDecodeError:
        return "not_utf8"
    if not text.strip():  # e.g. a BOM followed by nothing, or only unicode spaces
        return "empty"
    ext = _extension(path)
    if ext == ARMORED_EXTENSION and text.lstrip().startswith(ARMOR_START):
        return "secret"
    if ext not in LONG_LINES_OK_EXTENSIONS and looks_minified(text):
        return "minified"
    return None


def looks_minified(text: str) -> bool:
    """Lines averaging over MINIFIED_AVG_LINE characters, or one line of MINIFIED_LONG_LINE+ characters
    holding at least half the text, in a text of MINIFIED_MIN_CHARS or more."""
    n = len(text)
    if n < MINIFIED_MIN_CHARS:
        return False
    lines = max(text.count("\n"), text.count("\r")) + 1  # \r alone: old Mac line ends
    if n / lines > MINIFIED_AVG_LINE:
        return True
    if n < MINIFIED_LONG_LINE:
        return False
    longest = max(map(len, text.replace("\r", "\n").split("\n")))
    return longest >= MINIFIED_LONG_LINE and longest * 2 >= n


def decode_text(data: bytes) -> str:
    """Strict UTF-8, with a leading BOM removed. Raises UnicodeDecodeError otherwise."""
    return data.decode("utf-8-sig")


def is_secret_path(path: str) -> bool:
    lowered = path.lower()
    name = lowered.rsplit("/", 1)[-1]
    if name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES):
        return True
    if ("/" + lowered).endswith(_SECRET_PATH_TAILS):
        return True
    if name.startswith(".env.") and name not in ENV_TEMPLATES:
        return True
    return name.startswith("secrets.")


def is_vendored_path(path: str) -> bool:
    *dirs, name = path.lower().split("/")
    # Only directory segments count: a *file* named `build` or `env` is ordinary source.
    if any(d in VENDORED_DIRS or d.endswith(VENDORED_DIR_SUFFIXES) for d in dirs):
        return True
    return name in LOCK_FILES or name.endswith(GENERATED_FILE_SUFFIXES)


def is_generated_path(path: str, size: int = 0) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    if GENERATED_NAME_RE.search(name):
        return True
    return name.endswith(".d.ts") and size > MAX_DECLARATION_BYTES


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""


# --- glob matching -----------------------------------------------------------------------


def glob_match(pattern: str, path: str) -> bool:
    """Match a repo-relative path against a glob, anchored at the repo root.

    `*` and `?` never cross `/`; `**` spans any number of directories, including none,
    so `**/*.py` matches `a.py` and `docs/**` matches everything below `docs/`.
    Case-sensitive, like git paths.
    """
    return glob_to_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.lstrip("/")  # "/src/**" means the same as "src/**": paths are repo-relative
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if pat.startswith("**", i):
            j = i
            while j < n and pat[j] == "*":
                j += 1
            at_start = i == 0 or pat[i - 1] == "/"
            if at_start and j < n and pat[j] == "/":
                out.append("(?:.*/)?")  # `**/`: zero or more whole directories
                j += 1
            elif at_start and j == n:
                out.append(".*")  # trailing `**`: everything below
            else:
                out.append("[^/]*")  # `a**b` is not a directory wildcard: plain `*`
            i = j
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            cls, i = _char_class(pat, i)
            out.append(cls)
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pat: str, i: int) -> tuple[str, int]:
    """Translate `[...]` starting at pat[i]; an unclosed `[` is a literal."""
    j = i + 1
    if j < len(pat) and pat[j] in "!^":
        j += 1
    if j < len(pat) and pat[j] == "]":  # `]` first in the class is a literal member
        j += 1
    while j < len(pat) and pat[j] != "]":
        j += 1
    if j >= len(pat):
        return re.escape("["), i + 1
    body = pat[i + 1 : j]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    # A class never matches `/`, like `*` and `?`.
    return (f"(?!/)[^{body}]" if negate else f"(?!/)[{body}]"), j + 1
