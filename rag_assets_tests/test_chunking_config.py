"""JSON, YAML and TOML: one chunk when small, top-level keys when over the budget."""

from __future__ import annotations

from rag_assets.chunking import chunk_file, chunk_file_with_status

from .test_chunking_syntax import check_contract, spans

COMPOSE = """\
# Stack for local development.
version: "3.9"

# The app and its database.
services:
  web:
    image: nginx:1.27
    ports:
      - "8080:80"
    depends_on: [db]
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
      POSTGRES_DB: app
volumes:
  data: {}
"""


def test_small_config_is_one_chunk():
    for path, src in [("docker-compose.yml", COMPOSE), ("package.json", '{\n  "name": "x"\n}\n'),
                      ("pyproject.toml", '[project]\nname = "x"\n')]:
        chunks, status = chunk_file_with_status(path, src)
        assert status == "ok"
        assert [(c.kind, c.symbol, c.start_line) for c in chunks] == [("module", "<module>", 1)]
        check_contract(chunks, src)


def test_yaml_splits_at_top_level_keys():
    chunks, status = chunk_file_with_status("docker-compose.yml", COMPOSE, max_tokens=45)
    assert status == "ok"
    check_contract(chunks, COMPOSE, 45)
    assert spans(chunks) == [
        ("section", "version", 1, 2),  # the comment above a key belongs to it
        ("section", "services", 4, 10),  # over the budget: cut at a nested key (db)...
        ("section", "services, volumes", 11, 17),  # ...and the rest packed with the next key
    ]


def test_json_packs_small_keys_and_splits_big_ones():
    deps = "".join(f'    "package-number-{i}": "^{i}.0.0",\n' for i in range(30)).rstrip(",\n") + "\n"
    src = f'{{\n  "name": "app",\n  "version": "1.0.0",\n  "private": true,\n  "dependencies": {{\n{deps}  }},\n  "license": "MIT"\n}}\n'
    chunks = chunk_file("package.json", src, max_tokens=120)
    check_contract(chunks, src, 120)
    assert {c.kind for c in chunks} == {"section"}
    # Greedy: the small keys share a chunk (with the start of the big one).
    assert chunks[0].start_line == 1 and chunks[0].symbol.startswith("name, version, private")
    parts = [c for c in chunks if c.symbol == "dependencies"]  # wholly inside one key: numbered parts
    assert len(parts) > 1 and [c.part for c in parts] == list(range(1, len(parts) + 1))
    lines = src.splitlines()
    assert all(lines[c.start_line - 1].startswith('    "package-number-') for c in parts)  # cut at nested keys
    assert chunks[-1].symbol.endswith("license") and chunks[-1].end_line == len(lines)


def test_toml_splits_at_tables():
    tables = "".join(f"\n# Table {i}.\n[tool.section{i}]\nkey = \"value number {i}\"\nother = [1, 2, 3]\n"
                     for i in range(12))
    src = f'title = "demo"\n{tables}'
    chunks = chunk_file("config.toml", src, max_tokens=60)
    check_contract(chunks, src, 60)
    assert {c.kind for c in chunks} == {"section"}
    assert chunks[0].symbol.startswith("title, tool.section0")
    assert all(c.text.lstrip().startswith(("title", "# Table")) for c in chunks)  # cut before a table's comment


def test_yaml_documents_and_invalid_json():
    docs = "".join(f"---\nkind: Service\nmetadata:\n  name: svc-{i}\n  labels: {{app: a{i}}}\n" for i in range(8))
    chunks = chunk_file("k8s.yaml", docs, max_tokens=50)
    check_contract(chunks, docs, 50)
    assert all(c.kind == "section" and "kind" in c.symbol for c in chunks)

    broken = '{\n  "a": 1,\n  "b": [1, 2\n' + "".join(f'  "k{i}": "value {i}",\n' for i in range(200)) + "}\n"
    chunks, status = chunk_file_with_status("bad.json", broken)
    assert status == "partial" and {c.kind for c in chunks} == {"text"}
    check_contract(chunks, broken)
