"""Evaluation: trec_eval metrics, paired significance tests, tables and JSON reports.

>>> from crossrank.evaluation import evaluate, to_json
>>> to_json(evaluate({"q1": {"d1": 0.9, "d2": 0.1}}, {"q1": {"d1": 1}}, ["nDCG@10"]))
{'nDCG@10': 1.0}
"""

from crossrank.evaluation.metrics import SUPPORTED_METRICS, EvalResult, evaluate, parse_metrics
from crossrank.evaluation.significance import (
    TESTS,
    SignificanceResult,
    TestName,
    bootstrap_test,
    compare,
    compare_results,
    holm,
    paired_t_test,
    randomization_test,
)
from crossrank.evaluation.tables import (
    MARKER,
    REPORT_SCHEMA_VERSION,
    format_table,
    report_json,
    to_json,
    write_json,
)

__all__ = [
    "MARKER",
    "REPORT_SCHEMA_VERSION",
    "SUPPORTED_METRICS",
    "TESTS",
    "EvalResult",
    "SignificanceResult",
    "TestName",
    "bootstrap_test",
    "compare",
    "compare_results",
    "evaluate",
    "format_table",
    "holm",
    "paired_t_test",
    "parse_metrics",
    "randomization_test",
    "report_json",
    "to_json",
    "write_json",
]
