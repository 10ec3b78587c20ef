"""crossrank: cross-encoder re-ranking for information retrieval."""

__version__ = "0.1.0"
