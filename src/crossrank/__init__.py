"""crossrank: cross-encoder re-ranking for information retrieval.

``crossrank.CrossEncoder`` is resolved on first access, so ``import crossrank.data`` (and the
``crossrank evaluate`` command) does not pay for importing torch and transformers.

Example:
    >>> import crossrank
    >>> crossrank.__version__
    '0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CrossEncoder", "__version__"]

_LAZY = {"CrossEncoder": "crossrank.inference.cross_encoder"}

if TYPE_CHECKING:
    from crossrank.inference.cross_encoder import CrossEncoder


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crossrank' has no attribute {name!r}")
