"""Fast cross-encoder inference: bulk tokenisation, token-budget batching, torch/ONNX backends.

Example:
    >>> from crossrank.inference import CrossEncoder, PassageConfig
    >>> ce = CrossEncoder.from_pretrained("path/to/model")  # doctest: +SKIP
    >>> ce.predict(pairs, passages=PassageConfig(window=128, stride=64))  # doctest: +SKIP
"""

from crossrank.inference.cross_encoder import CrossEncoder, RankedDoc
from crossrank.inference.engine import InferenceStats
from crossrank.inference.passages import PassageConfig

__all__ = ["CrossEncoder", "InferenceStats", "PassageConfig", "RankedDoc"]
