"""Neural interaction ranking models: K-NRM, Conv-KNRM, neural tensor matching, co-attention.

Every model maps padded query/doc term ids and masks to one logit per pair, and
``InteractionScorer`` wraps any of them as a ``crossrank.protocols.Scorer``.

The default input layer is the offline MiniLM WordPiece matrix:
``TermEmbeddings.from_minilm()`` with ``embeddings.tokenizer()``; a word2vec/GloVe text file
works the same way through ``TermEmbeddings.from_word2vec_text(path)``.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "vectors.txt"
    >>> _ = path.write_text("aspirin 0.9 0.1\\nfever 0.2 0.8\\nreduces 0.5 0.5\\n")
    >>> embeddings = TermEmbeddings.from_word2vec_text(path, trainable=False)
    >>> model = build_interaction_model("knrm", embeddings)
    >>> scorer = InteractionScorer(model, embeddings.tokenizer())
    >>> scorer.score(["aspirin fever"], ["Aspirin reduces fever."]).dtype
    dtype('float32')
"""

from crossrank.models.interaction.base import InteractionModel
from crossrank.models.interaction.coattention import CoAttention, CoAttentionConfig
from crossrank.models.interaction.conv_knrm import ConvKNRM, ConvKNRMConfig
from crossrank.models.interaction.embeddings import (
    EmbeddingConfig,
    TermEmbeddings,
    WordVectors,
    read_word2vec_text,
)
from crossrank.models.interaction.heatmap import (
    save_heatmap,
    save_interaction_heatmap,
    save_kernel_heatmap,
)
from crossrank.models.interaction.kernels import default_kernel_mus, kernel_pooling
from crossrank.models.interaction.knrm import KNRM, KNRMConfig
from crossrank.models.interaction.scorer import InteractionScorer
from crossrank.models.interaction.serialization import (
    ARCHITECTURES,
    build_interaction_model,
    default_config,
    load_interaction_model,
    save_interaction_model,
)
from crossrank.models.interaction.tensor import (
    BilinearTensor,
    CPTensor,
    LowRankBilinearTensor,
    TensorLayer,
    TuckerTensor,
)
from crossrank.models.interaction.tensor_matching import (
    NeuralTensorConfig,
    NeuralTensorModel,
    TensorCost,
    tensor_costs,
)
from crossrank.models.interaction.text import (
    PairBatch,
    TermTokenizer,
    WordPieceTokenizer,
    WordTokenizer,
    encode_pairs,
    pad_sequences,
    sentence_end_ids,
)

__all__ = [
    "ARCHITECTURES",
    "KNRM",
    "BilinearTensor",
    "CPTensor",
    "CoAttention",
    "CoAttentionConfig",
    "ConvKNRM",
    "ConvKNRMConfig",
    "EmbeddingConfig",
    "InteractionModel",
    "InteractionScorer",
    "KNRMConfig",
    "LowRankBilinearTensor",
    "NeuralTensorConfig",
    "NeuralTensorModel",
    "PairBatch",
    "TensorCost",
    "TensorLayer",
    "TermEmbeddings",
    "TermTokenizer",
    "TuckerTensor",
    "WordPieceTokenizer",
    "WordTokenizer",
    "WordVectors",
    "build_interaction_model",
    "default_config",
    "default_kernel_mus",
    "encode_pairs",
    "kernel_pooling",
    "load_interaction_model",
    "pad_sequences",
    "read_word2vec_text",
    "save_heatmap",
    "save_interaction_heatmap",
    "save_interaction_model",
    "save_kernel_heatmap",
    "sentence_end_ids",
    "tensor_costs",
]
