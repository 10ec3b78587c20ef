"""CEDR inference: query/document masks from token types, and the batched scorer."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from crossrank.errors import ConfigError
from crossrank.inference.cedr import CEDRScorer, check_segments, segment_masks
from crossrank.inference.tokenize import PairTemplate, PairTokenizer
from crossrank.models.cedr import CEDRKNRM, CEDRConfig
from crossrank.models.cedr_io import save_cedr
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.tiny import build_tiny_checkpoint

QUERIES = ["cats and dogs", "gene", "what is bm25 ranking", "gene"]
DOCS = [
    "the cat is a cell",
    "protein gene cancer study results",
    "bm25 is a ranking function for search",
    "long filler text " * 20,
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("cedr-inf") / "tiny", seed=2)


def _randomise_ranker(model: CEDRKNRM) -> None:
    """Kernel weights start at 0; random ones make the kernel features count."""
    with torch.no_grad():
        model.head.ranker.weight.normal_()


def test_segment_masks_match_the_tokenizer_sequence_ids(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    enc = tok(QUERIES, DOCS, padding=True, return_tensors="np")
    template = PairTokenizer(tok).template
    query, doc = segment_masks(enc["attention_mask"], enc["token_type_ids"], template)
    seq = np.array([[-1 if s is None else s for s in enc.sequence_ids(i)] for i in range(4)])
    assert np.array_equal(query, seq == 0)
    assert np.array_equal(doc, seq == 1)


def test_segments_need_token_types() -> None:
    template = PairTemplate(np.array([0]), np.array([2, 2]), np.array([2]), (0, 0, 0, 0, 0), 1)
    with pytest.raises(ConfigError, match="token_type_ids"):
        check_segments(SimpleNamespace(uses_token_types=False, template=template))


def test_scorer_is_batch_and_padding_invariant(tiny_dir: Path) -> None:
    torch.manual_seed(0)
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(max_length=64))
    _randomise_ranker(model)
    scorer = CEDRScorer(model, token_budget=64)  # small budget: many batches, little padding
    together = scorer.score(QUERIES, DOCS)
    assert together.dtype == np.float32 and together.shape == (4,)
    assert scorer.last_stats is not None and scorer.last_stats.pairs == 4
    alone = np.array([scorer.score([q], [d])[0] for q, d in zip(QUERIES, DOCS, strict=True)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    one_batch = CEDRScorer(model, token_budget=4096).score(QUERIES, DOCS)
    np.testing.assert_allclose(together, one_batch, atol=1e-5)


def test_scorer_matches_the_model_on_tokenizer_inputs(tiny_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(cls="vector"))
    _randomise_ranker(model)
    path = save_cedr(model.eval(), tmp_path / "cedr")
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    enc = tok(QUERIES[:3], DOCS[:3], padding=True, return_tensors="pt")
    seq = torch.tensor([[-1 if s is None else s for s in enc.sequence_ids(i)] for i in range(3)])
    with torch.no_grad():
        expected = model(**enc, query_mask=seq == 0, doc_mask=seq == 1).numpy()
    scores = CEDRScorer.from_pretrained(path).score(QUERIES[:3], DOCS[:3])
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_scorer_checks_its_inputs(tiny_dir: Path) -> None:
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig())
    with pytest.raises(ConfigError, match="max_length=9999"):
        CEDRScorer(model, max_length=9999)
    with pytest.raises(ConfigError, match="2 documents"):
        CEDRScorer(model).score(["q"], ["a", "b"])
