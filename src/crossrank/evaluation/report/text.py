"""Cell formatting shared by the report's tables.

>>> p_cell(0.0123, 0.05)
'0.0123†'
>>> mib(3 * 1024 * 1024)
'3.0'
"""

from __future__ import annotations

from crossrank.evaluation.report.model import AccuracyRow

__all__ = ["MARKER", "TEST_NAMES", "ci_cell", "mib", "ms", "p_cell"]

MARKER = "†"
TEST_NAMES = {
    "t": "paired t-test",
    "randomization": "paired randomisation test",
    "bootstrap": "paired bootstrap test",
}


def ci_cell(row: AccuracyRow) -> str:
    """``mean [low, high]``.

    >>> ci_cell(AccuracyRow("x", 0.5, 0.41, 0.6, None, None))
    '0.5000 [0.410, 0.600]'
    """
    return f"{row.mean:.4f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def p_cell(p: float | None, alpha: float) -> str:
    """A p-value with † below ``alpha``; an em dash when there is none (the baseline)."""
    if p is None:
        return "—"
    text = f"{p:.2e}" if p < 1e-4 else f"{p:.4f}"
    return text + (MARKER if p < alpha else "")


def ms(value: float) -> str:
    """Milliseconds with precision that suits the magnitude.

    >>> (ms(0.0123), ms(4.56), ms(1234.5))
    ('0.012', '4.56', '1234')
    """
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:.0f}"


def mib(n_bytes: int | None) -> str:
    """Bytes as MiB with one decimal; an em dash for None."""
    return "—" if n_bytes is None else f"{n_bytes / 2**20:.1f}"
