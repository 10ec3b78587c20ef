"""Test helper: a model-input batch of the tiny checkpoint's tokenizer, pairing text i with
text n-1-i (query and document), the document cut to the reversed text's own length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from crossrank.inference.tokenize import PairTokenizer, TokenBatch


def reversed_pairs_batch(
    tiny_dir: Path, texts: Sequence[str], *, pad_multiple: int = 1
) -> TokenBatch:
    tok = PairTokenizer(AutoTokenizer.from_pretrained(tiny_dir))
    enc = tok.encode(list(texts))
    n = len(texts)
    index = np.arange(n)
    return tok.assemble(
        enc.tokens,
        enc.tokens,
        query_index=index,
        doc_index=index[::-1].copy(),
        doc_start=np.zeros(n, dtype=np.int64),
        doc_end=enc.tokens.lengths[::-1].copy(),
        pad_multiple=pad_multiple,
    )
