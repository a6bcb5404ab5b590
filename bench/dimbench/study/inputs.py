"""From a corpus spec to what the study measures: the corpus loaded, and its queries as StudyQuery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus.cache import ensure_corpus
from dimbench.corpus.load import LoadReport, load_corpus
from dimbench.corpus.reader import Corpus, bucket_name
from dimbench.database import db, settle
from dimbench.errors import DimbenchError
from dimbench.study import runs
from dimbench.study.measure import StudyQuery
from dimbench.vocabulary import COLUMN_EMBEDDING

SCOPES = ("workspace", "all")


def check_columns(column_types: list[str], has_ada: bool, corpus: str, where: str) -> None:
    """Before any work: every column type the grid measures reads an embedding the corpus carries."""
    held = {"768", "1536"} | ({"ada"} if has_ada else set())
    for column_type in column_types:
        if COLUMN_EMBEDDING[column_type] not in held:
            raise DimbenchError(
                f"{where}: column type {column_type} searches ada-002's own vectors, which corpus {corpus} "
                "does not carry (generate it with ada = true, or import ada embeddings): drop it from "
                "column_types"
            )


@dataclass
class StudyCorpus:
    corpus: Corpus
    load: LoadReport
    queries: list[StudyQuery] = field(repr=False)
    settled: dict[str, Any] = field(default_factory=dict)  # the VACUUM (ANALYZE) after the load

    def describe(self) -> dict[str, Any]:
        return {
            **self.corpus.describe(),
            "load": {
                "seconds": round(self.load.seconds, 2),
                "rows": self.load.rows,
                "chunks_per_s": self.load.chunk_rate,
            },
        }


def study_queries(corpus: Corpus) -> list[StudyQuery]:
    data = corpus.queries()
    asked = corpus.query_vectors()  # each column's own query vectors
    graded = graded_labels(corpus, data)
    by_user: dict[int, list[int]] = {}
    for ws, user, _ in corpus.memberships.tolist():
        by_user.setdefault(user, []).append(ws)
    doc_topic = corpus.doc_topic
    doc_ws = corpus.doc_workspace
    queries = []
    for i in range(len(data["user"])):
        user = int(data["user"][i])
        scope = SCOPES[int(data["scope"][i])]
        own = sorted(by_user[user])
        filter_ws = [int(data["workspace"][i])] if scope == "workspace" else own
        truth_ids, truth_dist = {}, {}
        # each column's own exact top-k, keyed as Build.embedding: 768, 1536 and "ada" where the corpus has it
        for key in (768, 1536, "ada"):
            if f"truth_{key}_ids" not in data:
                continue
            ids = data[f"truth_{key}_ids"][i]
            keep = ids >= 0
            truth_ids[key] = [corpus.uuid("chunk", int(x)) for x in ids[keep]]
            truth_dist[key] = [float(x) for x in data[f"truth_{key}_dist"][i][keep]]
        if graded is not None:
            relevance = graded.get(i, {})
        else:
            source = int(data["source_document"][i])
            relevance = {corpus.uuid("chunk", c): 2 for c in corpus.chunks_of(source)}
            # Same-topic documents the query may see are partly relevant (grade 1).
            visible_docs = np.flatnonzero(np.isin(doc_ws, filter_ws) & (doc_topic == doc_topic[source]))
            for d in visible_docs[:200].tolist():
                if d != source:
                    for c in corpus.chunks_of(d):
                        relevance[corpus.uuid("chunk", c)] = 1
        queries.append(
            StudyQuery(
                qid=i,
                user=corpus.uuid("user", user),
                scope=scope,
                bucket=bucket_name(int(data["bucket"][i])),
                filter_ids=tuple(corpus.uuid("workspace", w) for w in filter_ws),
                visible=frozenset(corpus.uuid("workspace", w) for w in own),
                vector_1536=asked["1536"][i],
                truth_ids=truth_ids,
                truth_distances=truth_dist,
                relevance=relevance,
                vectors={768: asked["768"][i], 1536: asked["1536"][i]}
                | ({"ada": asked["ada"][i]} if "ada" in asked else {}),
                exact_ndcg=exact_quality(corpus, data, i, relevance),
            )
        )
    return queries


EXACT = {"768": "truth_768_ids", "1536": "truth_1536_ids", "ada": "truth_ada_ids"}  # option -> its truth


def exact_quality(
    corpus: Corpus, data: dict[str, np.ndarray], i: int, relevance: dict
) -> dict[str, float | None]:
    """nDCG@10 of each stored embedding's exact top-10 for query i: the models' own quality."""
    from dimbench import stats

    ideal = sorted(relevance.values(), reverse=True)
    out: dict[str, float | None] = {}
    for option, key in EXACT.items():
        if key in data:
            ids = [corpus.uuid("chunk", int(x)) for x in data[key][i] if x >= 0]
            out[option] = stats.ndcg_at_k([relevance.get(c, 0) for c in ids], ideal, 10)
    return out


def graded_labels(corpus: Corpus, data: dict[str, np.ndarray]) -> dict[int, dict] | None:
    """Imported corpora carry their graded labels (qrel_query, qrel_chunk, qrel_grade); generated ones
    derive them from the topic structure (None here)."""
    if "qrel_query" not in data:
        return None
    out: dict[int, dict] = {}
    for q, chunk, grade in zip(data["qrel_query"], data["qrel_chunk"], data["qrel_grade"], strict=True):
        out.setdefault(int(q), {})[corpus.uuid("chunk", int(chunk))] = int(grade)
    return out


def prepare_corpus(
    spec_path: Path | Corpus,
    dsn: str,
    phases,
    progress: bool = True,
    calibrate: bool = False,
    replace: bool = False,
) -> StudyCorpus:
    """Generate (or reuse) the corpus of a spec — or take an already verified Corpus (an imported one:
    `dimbench run --corpus DIR`) — calibrate it if asked and not done yet, load it: each phase timed."""
    with phases.timed("corpus"):
        corpus = spec_path if isinstance(spec_path, Corpus) else ensure_corpus(spec_path, progress=progress)
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        if calibrate and not corpus.manifest.get("calibration"):
            from dimbench.corpus import calibrate as calibration

            with phases.timed("calibrate"):
                calibration.record(corpus, calibration.calibrate(conn, corpus, progress=progress))
        with phases.timed("load"):
            report = load_corpus(conn, corpus, replace=replace, progress=progress)
        print(report.summary())
        # Settle before any build or measurement: hint bits, visibility map and statistics as a live
        # system has them, and nothing left for autovacuum to do on the freshly loaded tables.
        if progress:
            print("vacuum (analyze) of the loaded tables …", flush=True)
        with phases.timed("vacuum"):
            settled = settle.vacuum_analyze(conn)
        settled["at"] = runs.now()
    return StudyCorpus(corpus, report, study_queries(corpus), settled)
