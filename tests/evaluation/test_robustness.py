"""Perturbation functions and the robustness runner on a tiny inline collection."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from crossrank.data.text import split_sentences
from crossrank.errors import ConfigError
from crossrank.evaluation.perturbations import (
    PERTURBATIONS,
    PerturbationSpec,
    append_irrelevant,
    builtin_synonyms,
    change_case,
    delete_terms,
    duplicate_terms,
    identity,
    shuffle_sentences,
    substitute_synonyms,
    typos,
)
from crossrank.evaluation.robustness import RobustnessResult, run_robustness

QUERIES = {
    "q1": "aspirin heart attack risk",
    "q2": "statin cholesterol treatment",
    "q3": "vaccine infection children",
    "q4": "unjudged query text",
}
DOCS = {
    "d1": "Low doses of aspirin lower heart attack risk. It thins the blood. Doses are small.",
    "d2": "The heart disease burden is large. Its risk rises with age.",
    "d3": "Each statin lowers cholesterol. The treatment lasts years. Side effects are rare.",
    "d4": "The cholesterol molecule is a lipid. Diet matters.",
    "d5": "A vaccine prevents infection in children. Trials were large.",
    "d6": "Young children catch colds. The infection spreads in schools.",
    "d7": "The rain falls mainly on the plain. Spain is sunny.",
    "d8": "Apple trees grow in cold places. The fruit ripens in autumn.",
}
QRELS = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}, "q3": {"d5": 1, "d6": 0}, "q4": {"d7": 0}}
RUN = {
    qid: {doc_id: float(len(DOCS) - i) for i, doc_id in enumerate(sorted(DOCS))} for qid in QUERIES
}


class OverlapScorer:
    """Case-sensitive term overlap; records the size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        self.calls.append(len(queries))
        return np.array(
            [len(set(q.split()) & set(d.split())) for q, d in zip(queries, docs, strict=True)],
            dtype=np.float32,
        )


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- perturbation functions -------------------------------------------------------------


def first_letter(word: str) -> str:
    return next(c for c in word if c.isalpha())


def test_typos_change_every_long_word_once_and_keep_whitespace() -> None:
    text = "a  big heart\nattack (risk)"
    out = typos(text, rng(), 1.0)
    assert out.startswith("a  big ") and "\n" in out  # short words and whitespace kept
    for before, after in zip(text.split(), out.split(), strict=True):
        if sum(c.isalpha() for c in before) >= 4:
            assert after != before
            assert first_letter(after) == first_letter(before)
            assert abs(len(after) - len(before)) <= 1
        else:
            assert after == before


def test_typos_strength_controls_how_many_words_change() -> None:
    text = " ".join(["protein", "kinase", "signal", "pathway", "tumour", "growth"] * 2)
    changed = [
        sum(a != b for a, b in zip(text.split(), typos(text, rng(s), 0.25).split(), strict=True))
        for s in range(5)
    ]
    assert changed == [3] * 5  # ceil(0.25 * 12)
    assert typos("a b c", rng(), 1.0) == "a b c"  # nothing eligible


def test_delete_terms_keeps_at_least_one_word() -> None:
    assert len(delete_terms("one two three four", rng(), 1.0).split()) == 1
    assert len(delete_terms("one two three four", rng(), 0.5).split()) == 2
    assert delete_terms("alone", rng(), 1.0) == "alone"
    words = ["one", "two", "three", "four", "five"]
    kept = delete_terms(" ".join(words), rng(), 0.2).split()
    assert len(kept) == 4 and kept == [w for w in words if w in kept]  # order kept


def test_synonyms_use_builtin_map_and_keep_case_and_punctuation() -> None:
    out = substitute_synonyms("Cancer, heart risk", rng(), 1.0)
    first, second, third = out.split()
    assert first[:-1] in {"Tumor", "Malignancy", "Neoplasm"} and first.endswith(",")
    assert second == "cardiac" and third in builtin_synonyms()["risk"]
    assert substitute_synonyms("zzz qqq", rng(), 1.0) == "zzz qqq"
    assert substitute_synonyms("HEART", rng(), 1.0, {"heart": ["cardiac"]}) == "CARDIAC"


def test_synonyms_reject_a_bad_user_map_entry() -> None:
    with pytest.raises(ConfigError, match="synonyms of 'risk'"):
        substitute_synonyms("risk", rng(), 1.0, {"risk": []})
    with pytest.raises(ConfigError, match="synonyms of 'risk'"):
        substitute_synonyms("risk", rng(), 1.0, {"risk": "odds"})


def test_builtin_synonym_map_is_well_formed() -> None:
    table = builtin_synonyms()
    assert len(table) >= 50
    for word, options in table.items():
        assert word == word.lower() and " " not in word
        assert options and all(isinstance(o, str) and o and o != word for o in options)


def test_change_case_changes_case_only() -> None:
    text = "Aspirin reduces MI risk"
    out = change_case(text, rng(), 1.0)
    assert all(a != b for a, b in zip(text.split(), out.split(), strict=True))
    assert out.lower() == text.lower()
    assert change_case("123 4.5", rng(), 1.0) == "123 4.5"  # no cased letter


def test_duplicate_terms_repeats_chosen_words() -> None:
    assert duplicate_terms("heart risk", rng(), 1.0) == "heart heart risk risk"
    out = duplicate_terms("a b c d e", rng(), 0.2).split()
    assert len(out) == 6 and sorted(set(out)) == ["a", "b", "c", "d", "e"]


def test_shuffle_sentences_permutes_sentences() -> None:
    text = "First one. Second one. Third one! Fourth one?"
    out = shuffle_sentences(text, rng(), 1.0)
    assert out != text
    assert sorted(split_sentences(out)) == sorted(split_sentences(text))
    assert shuffle_sentences("Only one sentence here.", rng(), 1.0) == "Only one sentence here."
    two = shuffle_sentences("A one. B two.", rng(), 0.01)  # at least two sentences move
    assert two == "B two. A one."


def test_append_irrelevant_takes_pool_sentences_not_in_text() -> None:
    pool = ["Own sentence.", "Rain falls.", "Snow melts."]
    out = append_irrelevant("Own sentence. Second.", rng(), 0.5, pool)
    assert out.startswith("Own sentence. Second. ")
    appended = out.removeprefix("Own sentence. Second. ")
    assert appended in {"Rain falls.", "Snow melts."}  # ceil(0.5 * 2) = 1 sentence
    two = append_irrelevant("Own sentence. Second.", rng(), 1.0, pool)
    assert len(split_sentences(two)) == 4 and two.count("Own sentence.") == 1
    with pytest.raises(ConfigError, match="pool is empty"):
        append_irrelevant("Text.", rng(), 1.0, [])
    with pytest.raises(ConfigError, match="already occurs"):
        append_irrelevant("Rain falls.", rng(), 1.0, ["Rain falls."])


@pytest.mark.parametrize("spec", list(PERTURBATIONS.values()), ids=list(PERTURBATIONS))
def test_registered_perturbations_are_deterministic(spec: PerturbationSpec) -> None:
    fn = spec.bind(["Unrelated pool sentence.", "Another one here."])
    text = DOCS["d1"] if spec.target == "document" else "Aspirin heart attack risk"
    assert fn(text, rng(7), 0.5) == fn(text, rng(7), 0.5)
    if spec.name != "identity":
        assert fn(text, rng(7), 0.5) != text


@pytest.mark.parametrize("strength", [0.0, 1.5, True, float("nan")])
def test_strength_is_validated(strength: float) -> None:
    with pytest.raises(ConfigError, match="strength"):
        typos("heart attack", rng(), strength)


def test_registry_targets() -> None:
    targets = {name: spec.target for name, spec in PERTURBATIONS.items()}
    assert targets["query_typos"] == "query" and targets["doc_typos"] == "document"
    assert targets["doc_shuffle_sentences"] == targets["doc_append_irrelevant"] == "document"
    assert targets["query_duplicate_terms"] == "query"
    assert PERTURBATIONS["identity"].fn is identity
    with pytest.raises(TypeError):
        PERTURBATIONS["mine"] = PERTURBATIONS["identity"]  # type: ignore[index]


# --- run_robustness ---------------------------------------------------------------------


def robustness(names: Sequence[str | PerturbationSpec], **kwargs: object) -> list[RobustnessResult]:
    return run_robustness(OverlapScorer(), RUN, QUERIES, DOCS, QRELS, perturbations=names, **kwargs)  # type: ignore[arg-type]


def test_identity_has_zero_delta_and_flip_rate() -> None:
    [result] = robustness(["identity"])
    assert result.before == result.after and result.delta == 0.0
    assert result.flip_rate == 0.0 and result.changed_fraction == 0.0
    assert result.n_queries == 3  # q4 has no relevant judgment
    assert result.metric == "nDCG@10" and 0.0 < result.before <= 1.0


def test_case_change_hurts_a_case_sensitive_scorer() -> None:
    [result] = robustness(["query_case"], strength=1.0)
    assert result.changed_fraction == 1.0
    # Every changed query word stops matching: all scores tie at 0 and the ranking falls
    # back to doc id descending, which puts the relevant (low-id) documents last.
    assert result.delta < -0.3
    assert result.flip_rate > 0.0


def test_one_batched_scorer_call_per_condition_over_top_k() -> None:
    scorer = OverlapScorer()
    names = ["identity", "query_typos", "doc_typos"]
    run_robustness(scorer, RUN, QUERIES, DOCS, QRELS, perturbations=names, top_k=3)
    assert scorer.calls == [3 * 3] * (1 + len(names))  # 3 judged queries x top 3


def test_deterministic_and_independent_of_other_perturbations() -> None:
    names = ["query_typos", "doc_typos", "doc_append_irrelevant", "doc_shuffle_sentences"]
    first = robustness(names, seed=3, strength=0.5)
    assert first == robustness(names, seed=3, strength=0.5)
    alone = robustness(["doc_typos"], seed=3, strength=0.5)
    assert alone[0] == first[1]


def test_every_registered_perturbation_runs() -> None:
    results = robustness(list(PERTURBATIONS), strength=0.5)
    assert [r.perturbation for r in results] == list(PERTURBATIONS)
    for result in results:
        assert result.delta == pytest.approx(result.after - result.before)
        assert 0.0 <= result.flip_rate <= 1.0 and 0.0 <= result.changed_fraction <= 1.0
        if result.perturbation != "identity":
            assert result.changed_fraction > 0.0, result.perturbation


class LengthScorer:
    """Scores a document by its number of characters."""

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        return np.array([len(d) for d in docs], dtype=np.float64)


def flip_rate(mapping: dict[str, str], **kwargs: object) -> float:
    docs = {"a": "x", "b": "xx", "c": "xxx", "d": "xxxx"}
    spec = PerturbationSpec(
        "remap", "document", lambda text, rng, strength: mapping.get(text, text)
    )
    run = {"q": {d: 1.0 for d in docs}}
    [result] = run_robustness(
        LengthScorer(), run, {"q": "query"}, docs, {"q": {"d": 1}}, perturbations=[spec], **kwargs
    )  # type: ignore[arg-type]
    return result.flip_rate


def test_flip_rate_hand_computed() -> None:
    # Original order d, c, b, a (4 docs: 6 pairs).
    assert flip_rate({}) == 0.0
    assert flip_rate({"xxxx": "xxx", "xxx": "xxxx"}) == pytest.approx(1 / 6)  # d <-> c only
    reverse = {"x": "xxxx", "xx": "xxx", "xxx": "xx", "xxxx": "x"}
    assert flip_rate(reverse) == 1.0
    # At depth 2 only the pair (d, c) counts, and it is inverted.
    assert flip_rate({"xxxx": "xxx", "xxx": "xxxx"}, flip_depth=2) == 1.0
    # d drops from first to last: it now trails c, b and a (3 of 6 pairs).
    assert flip_rate({"xxxx": ""}) == pytest.approx(3 / 6)


def test_custom_perturbation_spec_with_user_synonyms() -> None:
    spec = PerturbationSpec(
        "query_my_synonyms",
        "query",
        lambda text, rng, strength: substitute_synonyms(text, rng, strength, {"aspirin": ["asa"]}),
    )
    [result] = robustness([spec], strength=1.0)
    assert result.perturbation == "query_my_synonyms"
    assert result.changed_fraction == pytest.approx(1 / 3)  # only q1 mentions aspirin


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"perturbations": ["nope"]}, "unknown perturbation 'nope'"),
        ({"perturbations": []}, "at least one"),
        ({"queries": {"q2": "x", "q3": "y"}}, "query 'q1'"),
        ({"docs": {k: v for k, v in DOCS.items() if k != "d5"}}, "'d5' has no text"),
        ({"top_k": 0}, "top_k must be > 0"),
        ({"flip_depth": 2.5}, "flip_depth must be an int"),
        ({"strength": 0.0}, "strength"),
        ({"metric": "nDCG@ten"}, "unsupported metric"),
        ({"qrels": {"q9": {"d1": 1}}}, "no run query has a relevant judgment"),
        ({"scorer": object()}, "score\\(queries, docs\\)"),
        ({"run": {"q1": {"d1": float("nan")}}}, "finite"),
    ],
)
def test_invalid_arguments_raise(change: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "scorer": OverlapScorer(),
        "run": RUN,
        "queries": QUERIES,
        "docs": DOCS,
        "qrels": QRELS,
        "perturbations": ["identity"],
    }
    with pytest.raises(ConfigError, match=match):
        run_robustness(**{**arguments, **change})  # type: ignore[arg-type]


def test_bad_scorer_output_is_rejected() -> None:
    class Short:
        def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
            return np.zeros(1)

    with pytest.raises(ConfigError, match="scorer returned shape"):
        run_robustness(Short(), RUN, QUERIES, DOCS, QRELS, perturbations=["identity"])


def test_results_are_plain_data() -> None:
    [result] = robustness(["query_duplicate_terms"])
    row = dataclasses.asdict(result)
    assert set(row) >= {"perturbation", "before", "after", "delta", "flip_rate"}
