"""Write a report folder atomically: report.md, report.html, report.json and the PNGs.

Everything is written into a temp folder beside ``out`` that replaces ``out`` only once
complete, so a failure leaves no partial report. Because the old folder is replaced as a
whole, ``out`` must be new, empty, or a previous report (it holds a crossrank report.json);
anything else is refused rather than deleted.

Example:
    >>> write_report(report, Path("reports/scifact-dev"))  # doctest: +SKIP
    PosixPath('reports/scifact-dev')
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from crossrank.data.atomic import atomic_dir, atomic_write_bytes
from crossrank.errors import ConfigError
from crossrank.evaluation.report.layout import report_blocks
from crossrank.evaluation.report.model import Report, report_json
from crossrank.evaluation.report.render import to_html, to_markdown
from crossrank.evaluation.tables import write_json

__all__ = ["REPORT_FILES", "check_output_dir", "write_report"]

REPORT_FILES = ("report.md", "report.html", "report.json")


def check_output_dir(out: Path) -> None:
    """ConfigError unless ``out`` may be replaced by a report (see the module docstring)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    marker = out / "report.json"
    try:
        kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != "crossrank-report":
        raise ConfigError(
            f"--out {out} is a non-empty folder that does not hold a crossrank report; "
            "it would be replaced as a whole, so choose a new or empty folder"
        )


def write_report(report: Report, out: str | Path) -> Path:
    """Write every report file into ``out`` (replacing a previous report there)."""
    target = Path(out)
    check_output_dir(target)
    blocks = report_blocks(report)
    images = {f.name: f.png for f in report.figures}
    clash = set(images) & set(REPORT_FILES)
    if clash:
        raise ConfigError(f"figure names clash with report files: {sorted(clash)}")
    with atomic_dir(target) as tmp:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's fixed 0700 would ignore the umask
        (tmp / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (tmp / "report.html").write_text(to_html(blocks, images, report.title), encoding="utf-8")
        write_json(tmp / "report.json", report_json(report))
        for name, png in images.items():
            with atomic_write_bytes(tmp / name) as handle:
                handle.write(png)
    return target


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
