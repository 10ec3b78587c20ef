"""crossrank: cross-encoder re-ranking for information retrieval."""

__version__ = "0.1.0"
from crossrank.inference.cross_encoder import CrossEncoder
