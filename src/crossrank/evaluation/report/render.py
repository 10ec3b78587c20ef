"""Document blocks (headings, paragraphs, tables, images, code) and their Markdown and HTML.

The report is laid out once as a list of blocks; each renderer turns the same blocks into
its format, so report.md and report.html always say the same thing. Text may contain
`` `code` `` spans. The HTML is self-contained: inline CSS, images embedded as base64 data.

Example:
    >>> blocks = [Heading(1, "Report"), Table(("a", "b"), (("1", "2"),))]
    >>> print(to_markdown(blocks))
    # Report
    <BLANKLINE>
    | a | b |
    |---|---|
    | 1 | 2 |
    <BLANKLINE>
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crossrank.errors import ConfigError

__all__ = [
    "Block",
    "Bullets",
    "Code",
    "Heading",
    "Image",
    "Paragraph",
    "Table",
    "to_html",
    "to_markdown",
]

_CODE_SPAN = re.compile(r"`([^`]+)`")
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 75em; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
code, pre { background: #f6f6f6; font-family: ui-monospace, monospace; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 1em 0; }
figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }
"""


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        bad = next((r for r in self.rows if len(r) != len(self.header)), None)
        if bad is not None:
            raise ConfigError(f"table row {bad!r} has {len(bad)} cells, header {len(self.header)}")


@dataclass(frozen=True, slots=True)
class Image:
    file: str
    caption: str


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[str, ...]


Block = Heading | Paragraph | Table | Image | Code | Bullets


def to_markdown(blocks: Sequence[Block]) -> str:
    """GitHub-flavoured Markdown; images are referenced by their relative file name."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            lines = [_md_row(block.header), "|" + "---|" * len(block.header)]
            lines += [_md_row(row) for row in block.rows]
            parts.append("\n".join(lines))
        elif isinstance(block, Image):
            parts.append(f"![{block.caption}]({block.file})\n\n*{block.caption}*")
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        else:
            parts.append(f"```\n{block.text}\n```")
    return "\n\n".join(parts) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def to_html(blocks: Sequence[Block], images: Mapping[str, bytes], title: str) -> str:
    """A standalone HTML page; every Image block's PNG is embedded from ``images``."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{_inline(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(c)}</th>" for c in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            if block.file not in images:
                raise ConfigError(f"image {block.file!r} has no PNG data")
            data = base64.b64encode(images[block.file]).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_inline(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        else:
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code> (escaping first keeps the spans literal)."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text))
