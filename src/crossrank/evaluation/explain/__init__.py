"""Explanations of cross-encoder scores: integrated gradients, attention, sentence deletion.

* :func:`integrated_gradients` attributes the score to query and document tokens (with the
  completeness error of the numerical integration in the result);
* :func:`attention_map` returns every layer's and head's query -> document attention block;
* :func:`sentence_deletion` scores the document with each sentence removed (any Scorer);
* :func:`explain_pair` / :func:`explain_run` do all three, and :func:`write_pair_html` /
  :func:`write_run_report` render self-contained HTML pages.

Example:
    >>> from crossrank.inference import CrossEncoder
    >>> encoder = CrossEncoder.from_pretrained("model-dir", backend="torch")  # doctest: +SKIP
    >>> write_pair_html("why.html", explain_pair(encoder, "query", "document"))  # doctest: +SKIP
"""

from crossrank.evaluation.explain.attention import AttentionMap, attention_map
from crossrank.evaluation.explain.counterfactual import (
    SentenceDeletion,
    SentenceEffect,
    sentence_deletion,
)
from crossrank.evaluation.explain.gradients import IGConfig, TokenAttributions, integrated_gradients
from crossrank.evaluation.explain.inputs import PairInputs, encode_pair
from crossrank.evaluation.explain.pair import (
    PairExplanation,
    RunSelection,
    explain_pair,
    explain_run,
    select_pairs,
)
from crossrank.evaluation.explain.render import render_pair_html, write_pair_html
from crossrank.evaluation.explain.report import (
    render_index_html,
    write_explanation_json,
    write_run_report,
)

__all__ = [
    "AttentionMap",
    "IGConfig",
    "PairExplanation",
    "PairInputs",
    "RunSelection",
    "SentenceDeletion",
    "SentenceEffect",
    "TokenAttributions",
    "attention_map",
    "encode_pair",
    "explain_pair",
    "explain_run",
    "integrated_gradients",
    "render_index_html",
    "render_pair_html",
    "select_pairs",
    "sentence_deletion",
    "write_explanation_json",
    "write_pair_html",
    "write_run_report",
]
