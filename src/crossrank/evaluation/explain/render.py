"""A self-contained HTML page for one :class:`PairExplanation` (inline CSS, no assets).

The page shows the query and document tokens as heat-maps of their integrated-gradients
attributions (red raises the score, blue lowers it), the sentence-deletion drops as bars,
and query x document attention grids (averaged over all layers and heads, then per layer).
Every piece of text is escaped with :func:`html.escape`.

Example:
    >>> page = render_pair_html(explanation)  # doctest: +SKIP
    >>> write_pair_html("explain.html", explanation)  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrank.data.atomic import atomic_write
from crossrank.evaluation.explain.attention import AttentionMap
from crossrank.evaluation.explain.counterfactual import SentenceDeletion
from crossrank.evaluation.explain.gradients import TokenAttributions
from crossrank.evaluation.explain.pair import PairExplanation

# Diverging ends (ColorBrewer RdBu) and the sequential end of the attention grid.
_POSITIVE = (202, 0, 32)
_NEGATIVE = (5, 113, 176)
_ATTENTION = (63, 0, 125)
_LEVELS = 24  # attention cells use a class per level: ~15 bytes a cell instead of ~40
COMPLETENESS_TOLERANCE = 0.01

PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.meta td{padding:2px 12px 2px 0}.ok{color:#1a7f37;font-weight:600}
.warn{color:#b35900;font-weight:600}.tokens{line-height:2.1;font-size:15px}
.tok{padding:2px 3px;margin:0 1px;border-radius:3px;white-space:pre}.cont{margin-left:-1px}
.legend span{display:inline-block;width:90px;padding:2px;text-align:center;font-size:12px}
table.sent{border-collapse:collapse}table.sent td{padding:3px 8px;vertical-align:top}
.bar{height:14px;display:inline-block;border-radius:2px}.barbox{width:260px}
.grid{overflow-x:auto}table.att{border-collapse:collapse;font-size:11px}
table.att td.c{width:14px;height:14px;border:1px solid #fff;padding:0}
table.att th{font-weight:normal;padding:1px 4px;white-space:pre}
table.att th.d{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left}
.note{color:#666;font-size:13px}
"""


def render_pair_html(explanation: PairExplanation) -> str:
    """The whole page as a string."""
    e = explanation
    title = f"crossrank explanation {e.query_id} {e.doc_id}".strip()
    body = "\n".join(
        [
            f"<h1>{_esc(title)}</h1>",
            _meta_table(e),
            _attribution_section(e.attributions),
            _sentence_section(e.sentences),
            _attention_section(e.attention),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{PAGE_CSS}{_attention_css()}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_pair_html(path: str | Path, explanation: PairExplanation) -> Path:
    """Write :func:`render_pair_html` to ``path`` atomically."""
    target = Path(path)
    page = render_pair_html(explanation)
    with atomic_write(target) as handle:
        handle.write(page)
    return target


def diverging_colour(value: float, scale: float) -> str:
    """White at 0, red for positive, blue for negative values; ``|value| >= scale`` saturates.

    >>> diverging_colour(0.0, 1.0), diverging_colour(1.0, 1.0), diverging_colour(-2.0, 1.0)
    ('#ffffff', '#ca0020', '#0571b0')
    """
    t = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    end = _POSITIVE if value > 0 else _NEGATIVE
    return _mix(end, t)


def _mix(end: tuple[int, int, int], t: float) -> str:
    r, g, b = (round(255 + (c - 255) * t) for c in end)
    return f"#{r:02x}{g:02x}{b:02x}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _meta_table(e: PairExplanation) -> str:
    rows = [("query", e.query), ("score", f"{e.score:.6g}")]
    rows += [
        (name, value) for name, value in (("query id", e.query_id), ("doc id", e.doc_id)) if value
    ]
    if e.doc_truncated:
        rows.append(("note", "the document was truncated to fit max_length; later text unseen"))
    cells = "".join(f"<tr><td><b>{_esc(k)}</b></td><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{cells}</table>'


def _attribution_section(a: TokenAttributions) -> str:
    scale = float(np.abs(np.concatenate([a.query_attributions, a.doc_attributions])).max(initial=0))
    ok = a.relative_error <= COMPLETENESS_TOLERANCE
    badge = '<span class="ok">ok</span>' if ok else '<span class="warn">raise --steps</span>'
    summary = (
        f"score {a.score:.6g} - baseline ({a.config.baseline}) {a.baseline_score:.6g} = "
        f"{a.score - a.baseline_score:.6g}; attributions sum to "
        f"{float(a.attributions.sum()):.6g}; completeness error {a.relative_error:.3%} "
        f"({a.config.steps} {a.config.rule} steps) {badge}"
    )
    legend = (
        '<div class="legend">'
        f'<span style="background:{diverging_colour(-scale, scale)};color:#fff">lowers score</span>'
        f'<span style="background:#ffffff">neutral</span>'
        f'<span style="background:{diverging_colour(scale, scale)};color:#fff">raises score</span>'
        f' <em class="note">max |attribution| {scale:.3g}</em></div>'
    )
    return (
        "<h2>Integrated gradients</h2>"
        f'<p class="note">{summary}</p>{legend}'
        f"<h3>Query</h3>{_token_heatmap(a.query_tokens, a.query_attributions, scale)}"
        f"<h3>Document</h3>{_token_heatmap(a.doc_tokens, a.doc_attributions, scale)}"
    )


def _token_heatmap(tokens: Sequence[str], values: np.ndarray, scale: float) -> str:
    spans = []
    for token, value in zip(tokens, values.tolist(), strict=True):
        text, continued = _display_token(token)
        colour = diverging_colour(value, scale)
        ink = "#fff" if scale > 0 and abs(value) / scale > 0.6 else "#000"
        css = "tok cont" if continued else "tok"
        spans.append(
            f'<span class="{css}" style="background:{colour};color:{ink}" '
            f'title="{_esc(token)}: {value:+.4g}">{_esc(text)}</span>'
        )
    return f'<div class="tokens">{"".join(spans)}</div>'


def _display_token(token: str) -> tuple[str, bool]:
    """Readable token text, and whether it continues the previous word (WordPiece ``##``)."""
    if token.startswith("##"):
        return token[2:], True
    # SentencePiece/byte-level BPE mark a word start instead.
    return token.lstrip("\u2581\u0120") or token, False


def _sentence_section(s: SentenceDeletion) -> str:
    scale = max((abs(e.drop) for e in s.effects), default=0.0)
    rows = []
    for e in s.ranked:
        width = 0.0 if scale == 0 else 100.0 * abs(e.drop) / scale
        colour = diverging_colour(e.drop, scale) if scale > 0 else "#cccccc"
        rows.append(
            f"<tr><td>{e.rank}</td><td>#{e.index + 1}</td>"
            f'<td class="barbox"><span class="bar" style="width:{width:.1f}%;'
            f'background:{colour}"></span></td><td>{e.drop:+.4g}</td>'
            f"<td>{_esc(e.sentence)}</td></tr>"
        )
    header = "<tr><th>rank</th><th>sentence</th><th>score drop</th><th></th><th>text</th></tr>"
    return (
        "<h2>Sentence deletion</h2>"
        f'<p class="note">full-document score {s.full_score:.6g}; drop = full score - score '
        "without the sentence (red: the sentence supports relevance)</p>"
        f'<table class="sent">{header}{"".join(rows)}</table>'
    )


def _attention_section(a: AttentionMap) -> str:
    parts = [
        "<h2>Attention (query tokens x document tokens)</h2>",
        f'<p class="note">{a.num_layers} layers x {a.num_heads} heads; darker = more '
        "attention from the query token (row) to the document token (column)</p>",
        "<h3>Mean over all layers and heads</h3>",
        _attention_grid(a.query_tokens, a.doc_tokens, a.mean()),
    ]
    for layer in range(a.num_layers):
        grid = _attention_grid(a.query_tokens, a.doc_tokens, a.mean(layer=layer))
        parts.append(
            f"<details><summary>layer {layer + 1} (mean over heads)</summary>{grid}</details>"
        )
    return "\n".join(parts)


def _attention_grid(rows: Sequence[str], cols: Sequence[str], block: np.ndarray) -> str:
    top = float(block.max(initial=0.0))
    levels = (
        np.zeros(block.shape, dtype=np.int64)
        if top <= 0
        else np.rint(block / top * (_LEVELS - 1)).astype(np.int64)
    )
    head = "".join(f'<th class="d">{_esc(_display_token(t)[0])}</th>' for t in cols)
    body = []
    for token, line in zip(rows, levels.tolist(), strict=True):
        cells = "".join(f'<td class="c a{v}"></td>' for v in line)
        body.append(f"<tr><th>{_esc(_display_token(token)[0])}</th>{cells}</tr>")
    return (
        f'<div class="grid"><table class="att"><tr><th></th>{head}</tr>'
        f'{"".join(body)}</table><span class="note">max {top:.3g}</span></div>'
    )


def _attention_css() -> str:
    return "".join(
        f"td.a{i}{{background:{_mix(_ATTENTION, i / (_LEVELS - 1))}}}" for i in range(_LEVELS)
    )
