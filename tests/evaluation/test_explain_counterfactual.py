"""Sentence deletion: a lexical scorer singles out the one relevant sentence, in one call."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.explain import sentence_deletion

QUERY = "does aspirin increase the risk of bleeding"
RELEVANT = "Daily aspirin raised the risk of major bleeding in older adults."
FILLER = [
    "The weather in spring was mild.",
    "Cats sleep for most of the day.",
    "The museum opened a new wing in March.",
    "Trains to the coast run every hour.",
]


class Overlap:
    """Counts query words in the document; records each call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        self.calls.append(len(queries))
        return np.array(
            [len(_words(q) & _words(d)) for q, d in zip(queries, docs, strict=True)],
            dtype=np.float32,
        )


def _words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()} - {"the", "of", "in"}


@pytest.mark.parametrize("position", [0, 2, 4])
def test_the_relevant_sentence_ranks_first(position: int) -> None:
    sentences = [*FILLER[:position], RELEVANT, *FILLER[position:]]
    scorer = Overlap()
    result = sentence_deletion(scorer, QUERY, " ".join(sentences))
    assert scorer.calls == [len(sentences) + 1]  # full document + every variant, one batch
    top = result.ranked[0]
    assert (top.index, top.sentence, top.rank) == (position, RELEVANT, 1)
    assert top.drop == 3.0  # the shared words: aspirin, risk, bleeding
    others = [e for e in result.effects if e.index != position]
    assert all(e.drop == 0.0 for e in others)
    assert result.full_score == 3.0


def test_effects_keep_document_order_and_ranks_are_a_permutation() -> None:
    doc = " ".join([FILLER[0], RELEVANT, FILLER[1]])
    result = sentence_deletion(Overlap(), QUERY, doc)
    assert [e.index for e in result.effects] == [0, 1, 2]
    assert sorted(e.rank for e in result.effects) == [1, 2, 3]
    # Ties keep document order.
    assert [e.index for e in result.ranked] == [1, 0, 2]
    as_dict = result.to_dict()
    assert as_dict["sentences"][1]["drop"] == result.effects[1].drop
    assert as_dict["sentences"][1]["score_without"] == result.full_score - result.effects[1].drop


def test_a_one_sentence_document_is_compared_with_the_empty_document() -> None:
    result = sentence_deletion(Overlap(), QUERY, RELEVANT)
    assert len(result.effects) == 1
    assert result.effects[0].score_without == 0.0


def test_bad_documents_and_scorers_raise() -> None:
    with pytest.raises(ConfigError, match="no sentences"):
        sentence_deletion(Overlap(), QUERY, "   ")

    class Broken:
        def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
            return np.zeros(1, dtype=np.float32)

    with pytest.raises(ConfigError, match=r"returned shape \(1,\) for 3 pairs"):
        sentence_deletion(Broken(), QUERY, "One. Two.")
