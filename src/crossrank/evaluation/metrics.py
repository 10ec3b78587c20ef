"""Ranking metrics computed by trec_eval (pytrec_eval), driven through ir_measures.

Supported metric names (ir_measures syntax): ``nDCG``, ``nDCG@k``, ``AP``, ``AP@k``,
``RR``, ``RR@k``, ``P@k`` and ``R@k``; results are keyed by ir_measures' canonical
name (``"MRR@10"`` is accepted and reported as ``"RR@10"``). Qrels grades are integers >= 0: nDCG uses the
grade itself as the gain; the binary metrics count a document as relevant when its grade
is >= 1 (trec_eval's default relevance level).

Which queries are evaluated (the trec_eval ``-c`` convention):

* The evaluated set is every qrels query with at least one relevant (grade >= 1)
  judgment, in qrels order. ``EvalResult.per_query`` covers exactly this set.
* A judged query the run does not answer (or answers with an empty ranking) scores 0 on
  every metric and counts in the mean, as with ``trec_eval -c``. pytrec_eval on its own
  averages over the intersection of run and qrels, which inflates the score of a run that
  skips hard queries.
* Qrels queries whose judgments are all 0 are left out (with a warning): every metric is
  0 for them whatever the run, so they only scale all means down. This is where we
  differ from ``trec_eval -c``, which would count them as zeros.
* Run queries absent from the evaluated set are ignored, with a warning giving the count.

Score ties are broken as trec_eval does: by document id, descending.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ir_measures
import numpy as np
from ir_measures.measures import Measure

from crossrank.data.types import Qrels, Run
from crossrank.errors import BackendUnavailableError, ConfigError

__all__ = ["SUPPORTED_METRICS", "EvalResult", "evaluate", "parse_metrics"]

SUPPORTED_METRICS = "nDCG, nDCG@k, AP, AP@k, RR, RR@k, P@k, R@k (k a positive integer)"
_FAMILIES = frozenset({"nDCG", "AP", "RR", "P", "R"})
_NEEDS_CUTOFF = frozenset({"P", "R"})
_MAX_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Metric values of one run.

    ``means`` maps metric -> mean over the evaluated queries; ``per_query`` maps
    metric -> query id -> value and covers every evaluated query (see module docstring).
    ``num_ignored_run_queries`` counts run queries that were not evaluated.
    """

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    num_ignored_run_queries: int = 0

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric names in the order they were requested."""
        return tuple(self.means)

    @property
    def query_ids(self) -> tuple[str, ...]:
        """The evaluated query ids, in qrels order."""
        first = next(iter(self.per_query.values()), {})
        return tuple(first)


def parse_metrics(names: Sequence[str]) -> tuple[Measure, ...]:
    """Parse metric names into ir_measures measures; raise ConfigError on a bad name.

    >>> [str(m) for m in parse_metrics(["nDCG@10", "RR"])]
    ['nDCG@10', 'RR']
    """
    if isinstance(names, str) or not names:
        raise ConfigError(
            f"metrics must be a non-empty sequence of names such as ['nDCG@10'], got {names!r}"
        )
    parsed = tuple(_parse_one(name) for name in names)
    seen: set[str] = set()
    for measure in parsed:
        if str(measure) in seen:
            raise ConfigError(f"metric {str(measure)!r} is requested twice")
        seen.add(str(measure))
    return parsed


def _parse_one(name: str) -> Measure:
    unsupported = f"unsupported metric {name!r}; supported: {SUPPORTED_METRICS}"
    if not isinstance(name, str):
        raise ConfigError(unsupported)
    try:
        measure = ir_measures.parse_measure(name)
    except (ValueError, NameError, SyntaxError, TypeError) as err:
        raise ConfigError(unsupported) from err
    # Parameters such as rel= or gains= would silently change the metric's definition.
    if measure.NAME not in _FAMILIES or set(measure.params) - {"cutoff"}:
        raise ConfigError(unsupported)
    cutoff = measure.params.get("cutoff")
    if cutoff is None and measure.NAME in _NEEDS_CUTOFF:
        raise ConfigError(f"metric {name!r} needs a cutoff, e.g. {measure.NAME}@10")
    if cutoff is not None and (type(cutoff) is not int or cutoff < 1):
        raise ConfigError(f"metric {name!r}: cutoff must be a positive integer, got {cutoff!r}")
    return measure


def evaluate(run: Run, qrels: Qrels, metrics: Sequence[str]) -> EvalResult:
    """Score ``run`` against ``qrels`` (see the module docstring for the query set).

    >>> result = evaluate({"q1": {"d1": 0.2, "d2": 0.9}}, {"q1": {"d1": 1}}, ["RR", "P@1"])
    >>> result.means
    {'RR': 0.5, 'P@1': 0.0}
    """
    measures = parse_metrics(metrics)
    judged = _relevant_qrels(qrels)
    clean_run, num_ignored = _clean_run(run, judged)
    if num_ignored:
        example = next(qid for qid in run if qid not in judged)
        warnings.warn(
            f"{num_ignored} run queries are not judged (no relevant qrels) and were "
            f"ignored (e.g. {example!r})",
            UserWarning,
            stacklevel=2,
        )
    raw = _trec_eval(measures, judged, clean_run)
    per_query: dict[str, dict[str, float]] = {}
    for measure in measures:
        values = np.array([raw[_base(measure)].get(qid, 0.0) for qid in judged], dtype=np.float64)
        if measure.NAME == "RR" and "cutoff" in measure.params:
            values = _cut_reciprocal_rank(values, measure.params["cutoff"])
        per_query[str(measure)] = dict(zip(judged, values.tolist(), strict=True))
    means = {name: math.fsum(v.values()) / len(v) for name, v in per_query.items()}
    return EvalResult(means=means, per_query=per_query, num_ignored_run_queries=num_ignored)


def _base(measure: Measure) -> Measure:
    # trec_eval has no recip_rank cutoff (ir_measures would hand RR@k to its msmarco
    # provider, which breaks ties by ascending doc id), so RR@k is derived from RR.
    if measure.NAME == "RR":
        return ir_measures.RR
    return measure


def _cut_reciprocal_rank(rr: np.ndarray, cutoff: int) -> np.ndarray:
    """RR@k from full-ranking RR: 1/rank when the first relevant rank is <= k, else 0."""
    ranks = np.rint(1.0 / np.where(rr > 0, rr, 1.0))
    return np.where((rr > 0) & (ranks <= cutoff), rr, 0.0)


def _trec_eval(
    measures: Sequence[Measure], qrels: Qrels, run: Run
) -> dict[Measure, dict[str, float]]:
    provider = ir_measures.pytrec_eval
    if not provider.is_available():
        raise BackendUnavailableError(
            "pytrec_eval is not importable; pip install pytrec-eval-terrier"
        )
    bases = list(dict.fromkeys(_base(m) for m in measures))
    evaluator = provider.evaluator(bases, qrels)
    raw: dict[Measure, dict[str, float]] = {m: {} for m in bases}
    for metric in evaluator.iter_calc(run):
        raw[metric.measure][metric.query_id] = float(metric.value)
    return raw


def _relevant_qrels(qrels: Qrels) -> Qrels:
    """Validated copy of the qrels queries that have at least one grade >= 1."""
    if not qrels:
        raise ConfigError("qrels are empty")
    kept: Qrels = {}
    for qid, judgments in qrels.items():
        grades: dict[str, int] = {}
        for doc_id, grade in judgments.items():
            if isinstance(grade, bool) or not isinstance(grade, int | np.integer) or grade < 0:
                raise ConfigError(
                    f"qrels grade for query {qid!r}, doc {doc_id!r} must be an int >= 0, "
                    f"got {grade!r}"
                )
            grades[doc_id] = int(grade)  # pytrec_eval rejects numpy integers
        if any(g >= 1 for g in grades.values()):
            kept[qid] = grades
    if not kept:
        raise ConfigError("qrels hold no relevant judgment (grade >= 1)")
    if len(kept) < len(qrels):
        dropped = [qid for qid in qrels if qid not in kept]
        warnings.warn(
            f"{len(dropped)} qrels queries have no relevant document and are not evaluated "
            f"(e.g. {dropped[:_MAX_EXAMPLES]!r})",
            UserWarning,
            stacklevel=3,
        )
    return kept


def _clean_run(run: Run, judged: Mapping[str, object]) -> tuple[Run, int]:
    """Validate every score; keep the judged queries with float scores pytrec_eval accepts."""
    if not run:
        raise ConfigError("run is empty: it holds no query")
    clean: Run = {}
    for qid, docs in run.items():
        if not docs:
            continue  # an empty ranking scores 0, like a missing query
        scores = np.asarray(list(docs.values()))
        if scores.dtype.kind not in "iuf":
            bad = next((s for s in docs.values() if not _is_real(s)), scores.dtype)
            raise ConfigError(f"run score for query {qid!r} must be a real number, got {bad!r}")
        finite = np.isfinite(scores)
        if not finite.all():
            doc_id = list(docs)[int(np.argmin(finite))]
            raise ConfigError(
                f"run score for query {qid!r}, doc {doc_id!r} is not finite: {docs[doc_id]!r}"
            )
        if qid in judged:
            # pytrec_eval only accepts Python floats (np.float32 fails), hence tolist().
            clean[qid] = dict(zip(docs, scores.astype(np.float64).tolist(), strict=True))
    return clean, sum(qid not in judged for qid in run)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
