"""Files of explanations: JSON of one pair, and a run's directory of pages with an index.

A run report is a directory holding ``index.html`` (one row per explained pair, linking to
its page), ``pair-0001.html`` ... and the matching ``pair-0001.json``. The directory is built
beside the target and renamed into place, so a failure leaves no partial report.

Example:
    >>> write_run_report("explain-out", explain_run(encoder, run, queries, docs))  # doctest: +SKIP
    PosixPath('explain-out')
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from crossrank.data.atomic import atomic_dir, atomic_write
from crossrank.errors import ConfigError
from crossrank.evaluation.explain.pair import PairExplanation
from crossrank.evaluation.explain.render import COMPLETENESS_TOLERANCE, PAGE_CSS, render_pair_html


def write_explanation_json(path: str | Path, explanation: PairExplanation) -> Path:
    """``explanation.to_dict()`` as compact JSON, written atomically."""
    return _write_json(Path(path), explanation.to_dict())


def write_run_report(directory: str | Path, explanations: Sequence[PairExplanation]) -> Path:
    """Write every pair's page and JSON plus ``index.html`` into ``directory`` (replaced)."""
    if not explanations:
        raise ConfigError("no explanations to write (the run selected no pairs)")
    target = Path(directory)
    with atomic_dir(target) as tmp:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the report from a web server
        for number, explanation in enumerate(explanations, start=1):
            stem = _stem(number)
            (tmp / f"{stem}.html").write_text(render_pair_html(explanation), encoding="utf-8")
            _write_json(tmp / f"{stem}.json", explanation.to_dict())
        (tmp / "index.html").write_text(render_index_html(explanations), encoding="utf-8")
    return target


def render_index_html(explanations: Sequence[PairExplanation]) -> str:
    """A table of the explained pairs, each linking to its page."""
    rows = []
    for number, e in enumerate(explanations, start=1):
        top = e.sentences.ranked[0]
        error = e.attributions.relative_error
        flag = "ok" if error <= COMPLETENESS_TOLERANCE else "warn"
        rows.append(
            f'<tr><td><a href="{_stem(number)}.html">{number}</a></td>'
            f"<td>{_esc(e.query_id)}</td><td>{_esc(e.doc_id)}</td><td>{e.score:.5g}</td>"
            f'<td class="{flag}">{error:.2%}</td><td>{top.drop:+.4g}</td>'
            f"<td>{_esc(top.sentence)}</td></tr>"
        )
    header = (
        "<tr><th>page</th><th>query</th><th>document</th><th>score</th>"
        "<th>IG completeness error</th><th>top drop</th><th>most important sentence</th></tr>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>crossrank explanations</title><style>{PAGE_CSS}"
        "table.idx td,table.idx th{padding:3px 10px;text-align:left}</style></head><body>"
        f"<h1>crossrank explanations ({len(explanations)} pairs)</h1>"
        f'<table class="idx">{header}{"".join(rows)}</table></body></html>\n'
    )


def _stem(number: int) -> str:
    # Numbered names: query and document ids may hold characters unsafe in file names.
    return f"pair-{number:04d}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _write_json(target: Path, obj: Mapping[str, object]) -> Path:
    try:
        # Compact: the attention weights alone hold layers x heads x q x d numbers.
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError as err:
        raise ConfigError(f"cannot write {target}: value is not valid JSON ({err})") from err
    with atomic_write(target) as handle:
        handle.write(text + "\n")
    return target
