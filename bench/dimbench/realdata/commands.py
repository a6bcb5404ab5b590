"""`dimbench corpus import` and `dimbench corpus embed`, registered into the corpus command group."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_import(args: argparse.Namespace) -> int:
    from dimbench.realdata.importer import import_file
    from dimbench.realdata.rows import EMBEDDINGS  # noqa: F401  (fail early if the module is broken)

    out = (
        Path(args.out)
        if args.out
        else Path(args.file).with_suffix("").with_name(Path(args.file).stem + "-corpus")
    )
    directory = import_file(Path(args.file), out, k=args.k, queries_per_bucket=args.queries_per_bucket)
    import json

    manifest = json.loads((directory / "manifest.json").read_text())
    counts = manifest["counts"]
    state = "embedded" if manifest["embedded"] else "not embedded yet (run `dimbench corpus embed`)"
    print(
        f"imported {counts['chunks']} chunks, {counts['documents']} documents, {counts['workspaces']} "
        f"workspaces into {directory} ({state})"
    )
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from dimbench.realdata import embed

    embedder = embed.Embedder(embed.client_from_env(), embed.default_cache(), batch_size=args.batch_size)
    try:
        result = embed.embed_corpus(Path(args.corpus), embedder, ada=args.ada, progress=not args.no_progress)
    finally:
        embedder.cache.close()
    print(
        f"embedded {result['texts']} texts with {result['requests']} requests ({result['retries']} retried); "
        f"768 = truncated 1536 (min cosine {result['matryoshka_cosine']:.5f})"
    )
    return 0


def register(corpus_sub: argparse._SubParsersAction) -> None:
    imp = corpus_sub.add_parser("import", help="import chunks (and embeddings) from JSONL or Parquet")
    imp.add_argument(
        "file", help="rows with workspace, document, text[, embedding_1536, embedding_768, embedding_ada]"
    )
    imp.add_argument("--out", help="corpus directory to create (default: <file>-corpus next to the file)")
    imp.add_argument("--k", type=int, default=10)
    imp.add_argument("--queries-per-bucket", type=int, default=20)
    imp.set_defaults(handler=cmd_import)
    emb = corpus_sub.add_parser("embed", help="embed an imported corpus's texts (OPENAI_API_KEY)")
    emb.add_argument("--provider", choices=["openai"], default="openai")
    emb.add_argument("--corpus", required=True, help="an imported corpus directory")
    emb.add_argument("--ada", action="store_true", help="also embed with text-embedding-ada-002")
    emb.add_argument("--batch-size", type=int, default=256)
    emb.add_argument("--no-progress", action="store_true")
    emb.set_defaults(handler=cmd_embed)
