"""Heat-map PNGs of one query-document pair: interaction matrices and kernel activations.

Drawing uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
switch, no display needed). Files are written to a temp file beside the target and renamed.

Example:
    >>> import tempfile, numpy as np
    >>> path = save_heatmap(np.eye(2), ["a", "b"], ["x", "y"], tempfile.mkdtemp() + "/m.png")
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from crossrank.data.atomic import atomic_write_bytes
from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.models.interaction.base import InteractionModel
from crossrank.models.interaction.conv_knrm import ConvKNRM
from crossrank.models.interaction.knrm import KNRM
from crossrank.models.interaction.text import PairBatch, TermTokenizer, encode_pairs

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:  # matplotlib is optional: only heat-maps need it
    Figure = None

__all__ = ["save_heatmap", "save_interaction_heatmap", "save_kernel_heatmap"]

_INCHES_PER_CELL = 0.28
_MAX_INCHES = 40.0


def save_heatmap(
    matrix: np.ndarray | Tensor,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Draw a labelled (rows x cols) heat-map with a colour bar and write it as a PNG."""
    if Figure is None:
        raise BackendUnavailableError("heat-maps need matplotlib: pip install matplotlib")
    values = matrix.detach().cpu().numpy() if isinstance(matrix, Tensor) else np.asarray(matrix)
    if values.ndim != 2 or values.shape != (len(row_labels), len(col_labels)):
        raise ConfigError(
            f"matrix shape {values.shape} does not match {len(row_labels)} row and "
            f"{len(col_labels)} column labels"
        )
    if values.size == 0:
        raise ConfigError("cannot draw an empty heat-map (a text has no tokens)")
    width = min(_MAX_INCHES, 3.0 + _INCHES_PER_CELL * values.shape[1])
    height = min(_MAX_INCHES, 2.0 + _INCHES_PER_CELL * values.shape[0])
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(col_labels)), labels=list(col_labels), rotation=90, fontsize=7)
    axes.set_yticks(range(len(row_labels)), labels=list(row_labels), fontsize=7)
    axes.set_title(title)
    return _write_png(figure, Path(path))


def _write_png(figure: Figure, target: Path) -> Path:
    with atomic_write_bytes(target) as handle:
        figure.savefig(handle, format="png", dpi=100)
    return target


def _one_pair(
    model: InteractionModel,
    tokenizer: TermTokenizer,
    query: str,
    doc: str,
    lengths: tuple[int, int],
) -> tuple[PairBatch, list[str], list[str]]:
    batch = encode_pairs(tokenizer, [query], [doc], *lengths)
    device = next(model.parameters()).device
    q_tokens = tokenizer.tokens(batch.q_ids[0, batch.q_mask[0]].tolist())
    d_tokens = tokenizer.tokens(batch.d_ids[0, batch.d_mask[0]].tolist())
    return batch.to(device), q_tokens, d_tokens


def save_interaction_heatmap(
    model: InteractionModel,
    tokenizer: TermTokenizer,
    query: str,
    doc: str,
    path: str | Path,
    *,
    max_query_len: int = 32,
    max_doc_len: int = 128,
) -> Path:
    """Heat-map of ``model.interaction_matrix`` (query terms x doc terms) for one pair.

    >>> import tempfile, torch
    >>> from crossrank.models.interaction import KNRM, KNRMConfig, TermEmbeddings, WordTokenizer
    >>> tokenizer = WordTokenizer(("<pad>", "<unk>", "aspirin", "fever", "reduces"))
    >>> model = KNRM(KNRMConfig(), TermEmbeddings.from_tensor(torch.randn(5, 4)))
    >>> out = save_interaction_heatmap(model, tokenizer, "aspirin fever",
    ...                                "Aspirin reduces fever.", tempfile.mkdtemp() + "/m.png")
    >>> out.suffix
    '.png'
    """
    batch, q_tokens, d_tokens = _one_pair(
        model, tokenizer, query, doc, (max_query_len, max_doc_len)
    )
    with torch.inference_mode():
        matrix = model.interaction_matrix(batch.q_ids, batch.q_mask, batch.d_ids, batch.d_mask)
    trimmed = matrix[0, : len(q_tokens), : len(d_tokens)]
    return save_heatmap(
        trimmed, q_tokens, d_tokens, path, title=f"{model.arch}: interaction matrix"
    )


def save_kernel_heatmap(
    model: KNRM | ConvKNRM,
    tokenizer: TermTokenizer,
    query: str,
    doc: str,
    path: str | Path,
    *,
    max_query_len: int = 32,
    max_doc_len: int = 128,
) -> Path:
    """Heat-map of kernel activations for one pair: rows are query terms (K-NRM) or n-gram
    pairs (Conv-KNRM), columns are kernels labelled by their mean."""
    if not isinstance(model, KNRM | ConvKNRM):
        raise ConfigError(f"{type(model).__name__} has no kernels; use save_interaction_heatmap")
    batch, q_tokens, _ = _one_pair(model, tokenizer, query, doc, (max_query_len, max_doc_len))
    with torch.inference_mode():
        activations = model.kernel_activations(batch.q_ids, batch.q_mask, batch.d_ids, batch.d_mask)
    if isinstance(model, KNRM):
        rows, values = q_tokens, activations[0, : len(q_tokens)]
    else:
        rows, values = model.kernel_row_labels(), activations[0]
    columns = [f"mu={mu:g}" for mu in model.config.kernel_mus]
    return save_heatmap(values, rows, columns, path, title=f"{model.arch}: kernel activations")
