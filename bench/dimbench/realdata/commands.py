"""`dimbench corpus import` and `dimbench corpus embed`, registered into the corpus command group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dimbench.errors import DimbenchError


def at_least(minimum: int):
    """An argparse type: an integer ≥ minimum (a batch of -1 texts once embedded nothing, marked
    embedded)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive = at_least(1)


def model_labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not name.strip():
            raise DimbenchError(f"--model {pair!r}: expected COLUMN=NAME, e.g. 1536=text-embedding-ada-002")
        out[column] = name.strip()
    return out


def cmd_import(args: argparse.Namespace) -> int:
    from dimbench.realdata.importer import import_file

    out = Path(args.out) if args.out else Path(args.file).with_name(Path(args.file).stem + "-corpus")
    directory = import_file(
        Path(args.file),
        out,
        k=args.k,
        queries_per_bucket=args.queries_per_bucket,
        queries=Path(args.queries) if args.queries else None,
        qrels=Path(args.qrels) if args.qrels else None,
        members_file=Path(args.members) if args.members else None,
        models=model_labels(args.model),
    )
    manifest = json.loads((directory / "manifest.json").read_text())
    counts = manifest["counts"]
    state = "embedded" if manifest["embedded"] else "not embedded yet (run `dimbench corpus embed`)"
    made = [
        part
        for part, where in manifest["provenance"].items()
        if isinstance(where, dict) and where.get("from") == "synthesized"
    ]
    print(
        f"imported {counts['chunks']} chunks, {counts['documents']} documents, {counts['workspaces']} "
        f"workspaces, {counts['users']} users, {counts['queries']} questions into {directory} ({state})"
        + (f"; synthesized: {', '.join(made)}" if made else "")
    )
    fewer = (manifest.get("queries") or {}).get("fewer_than_asked") or {}
    if fewer:
        print("cells with fewer questions than asked: " + ", ".join(f"{c} {n}" for c, n in fewer.items()))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from dimbench.realdata import embed, providers

    if args.provider == "local":
        if args.base_url or args.dimensions:
            raise DimbenchError("--provider local takes no --base-url or --dimensions")
        if args.ada:
            raise DimbenchError("--ada embeds with OpenAI's ada-002: not with --provider local")
        provider: providers.Provider = providers.LocalProvider(
            args.model or providers.DEFAULT_LOCAL, args.model_path
        )
    else:
        if args.model_path:
            raise DimbenchError("--model-path is for --provider local")
        provider = providers.openai_provider(args.base_url, args.max_retries)
    embedder = embed.Embedder(provider, embed.default_cache(), batch_size=args.batch_size)
    try:
        result = embed.embed_corpus(
            Path(args.corpus),
            embedder,
            model=args.model or (providers.DEFAULT_LOCAL if args.provider == "local" else embed.MODEL),
            dims=args.dimensions,
            column=args.column,
            ada=args.ada,
            progress=not args.no_progress,
        )
    finally:
        embedder.cache.close()
    made = "; ".join(f"column {c}: {label}" for c, label in result["columns"].items())
    check = (
        f"; 768 = truncated 1536 (min cosine {result['matryoshka_cosine']:.5f})"
        if result["matryoshka_cosine"] is not None
        else ""
    )
    print(
        f"embedded {result['texts']} texts ({result['questions']} questions) with {result['requests']} "
        f"requests ({result['retries']} retried); {made}{check}"
    )
    return 0


def cmd_public(args: argparse.Namespace) -> int:
    from dimbench.realdata import public_corpus

    packages = tuple(p for p in args.packages.split(",") if p) if args.packages is not None else None
    made = public_corpus.build(
        Path(args.out),
        packages if packages is not None else public_corpus.DEFAULT_PACKAGES,
        stdlib=not args.no_stdlib,
    )
    print(
        f"wrote {made['chunks']} chunks of {made['workspaces']} workspaces, {made['questions']} questions "
        f"and "
        f"{made['qrels']} graded labels into {args.out} (chunks sha256 {made['chunks_sha256'][:12]})"
    )
    return 0


def register(corpus_sub: argparse._SubParsersAction) -> None:
    pub = corpus_sub.add_parser(
        "public", help="write a real corpus (installed packages' docstrings) in corpus import's formats"
    )
    pub.add_argument("--out", required=True, help="directory for chunks.jsonl, queries.jsonl, qrels.tsv")
    pub.add_argument(
        "--packages", help="comma-separated installed top-level packages (default: a pinned set)"
    )
    pub.add_argument("--no-stdlib", action="store_true", help="leave out the standard library's modules")
    pub.set_defaults(handler=cmd_public)
    imp = corpus_sub.add_parser("import", help="import chunks (and embeddings, questions, memberships)")
    imp.add_argument(
        "file", help="rows with workspace, document, text[, id, embedding_1536, embedding_768, embedding_ada]"
    )
    imp.add_argument("--out", help="corpus directory to create (default: <file>-corpus next to the file)")
    imp.add_argument("--k", type=int, default=10)
    imp.add_argument(
        "--queries", help="questions (JSONL/Parquet: id, text, user and/or workspace, embeddings)"
    )
    imp.add_argument("--qrels", help="graded labels of --queries (BEIR TSV: query-id, corpus-id, score)")
    imp.add_argument("--members", help="memberships (JSONL/Parquet: user, workspace, role)")
    imp.add_argument(
        "--queries-per-bucket",
        type=positive,
        default=300,
        help="without --queries: held-out chunks per (scope, bucket), where the corpus allows (default 300)",
    )
    imp.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="COLUMN=NAME",
        help="the model that made the rows' embeddings of a column (e.g. 1536=text-embedding-ada-002)",
    )
    imp.set_defaults(handler=cmd_import)
    emb = corpus_sub.add_parser("embed", help="embed an imported corpus's chunk and question texts")
    emb.add_argument("--provider", choices=["openai", "local"], default="openai")
    emb.add_argument("--corpus", required=True, help="an imported corpus directory")
    emb.add_argument("--base-url", help="an OpenAI-compatible server (default: OpenAI, or OPENAI_BASE_URL)")
    emb.add_argument("--model", help="the model (default: text-embedding-3-small; local: all-MiniLM-L6-v2)")
    emb.add_argument("--model-path", help="--provider local: a sentence-transformers model directory")
    emb.add_argument(
        "--dimensions", type=positive, help="ask the model for this many dimensions (3-small/large)"
    )
    emb.add_argument(
        "--column", choices=["1536", "768", "ada"], default="1536", help="the column to fill (default 1536)"
    )
    emb.add_argument("--ada", action="store_true", help="also embed with text-embedding-ada-002")
    emb.add_argument("--batch-size", type=positive, default=256)
    emb.add_argument(
        "--max-retries", type=at_least(0), default=5, help="retries of a failed request (default 5)"
    )
    emb.add_argument("--no-progress", action="store_true")
    emb.set_defaults(handler=cmd_embed)
