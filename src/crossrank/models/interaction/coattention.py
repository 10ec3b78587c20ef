"""Co-attention matching with hierarchical attention pooling (words -> sentences -> document).

Each refinement round computes the affinity ``L = Q W D^T / sqrt(h)``, attends both ways
(query-to-document: each query term reads the doc; document-to-query: each doc term reads the
query; masked softmax) and re-encodes Q and D with their attended context through a small
feed-forward block with a residual connection and layer norm. The document is then pooled
hierarchically: query-aware attention over the words of each sentence (sentences end at '.',
'!' or '?' tokens), then over sentences. An MLP scores [q; d; q * d; |q - d|].

Example:
    >>> import torch
    >>> from crossrank.models.interaction.embeddings import TermEmbeddings
    >>> config = CoAttentionConfig(hidden_dim=8, ffn_dim=16, sentence_end_ids=(5,))
    >>> model = CoAttention(config, TermEmbeddings.from_tensor(torch.randn(20, 4)))
    >>> ids, mask = torch.tensor([[3, 4, 5, 6]]), torch.tensor([[True, True, True, True]])
    >>> model(ids, mask, ids, mask).shape
    torch.Size([1])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError, require_positive
from crossrank.models.interaction.base import InteractionModel, check_schema, pair_masks
from crossrank.models.interaction.embeddings import TermEmbeddings
from crossrank.models.interaction.functional import masked_softmax

__all__ = ["MINILM_SENTENCE_END_IDS", "CoAttention", "CoAttentionConfig", "sentence_index"]

COATTENTION_SCHEMA_VERSION = 1
# '.', '!', '?' in the MiniLM WordPiece vocabulary (see text.sentence_end_ids).
MINILM_SENTENCE_END_IDS = (1012, 999, 1029)


@dataclass(frozen=True, slots=True)
class CoAttentionConfig:
    """Co-attention settings; ``sentence_end_ids`` are the ids that close a sentence.

    >>> CoAttentionConfig(rounds=3).rounds
    3
    """

    hidden_dim: int = 128
    ffn_dim: int = 256
    rounds: int = 2
    sentence_end_ids: tuple[int, ...] = MINILM_SENTENCE_END_IDS
    schema_version: int = COATTENTION_SCHEMA_VERSION

    def __post_init__(self) -> None:
        require_positive("hidden_dim", self.hidden_dim)
        require_positive("ffn_dim", self.ffn_dim)
        require_positive("rounds", self.rounds)
        if any(
            isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.sentence_end_ids
        ):
            raise ConfigError(f"sentence_end_ids must be token ids, got {self.sentence_end_ids!r}")
        check_schema("CoAttentionConfig", self.schema_version, COATTENTION_SCHEMA_VERSION)


def sentence_index(ids: Tensor, mask: Tensor, end_ids: Tensor) -> Tensor:
    """Sentence number of every token (B, L); an end mark belongs to the sentence it closes.

    >>> sentence_index(torch.tensor([[7, 1, 8, 8, 1, 9]]), torch.ones(1, 6, dtype=torch.bool),
    ...                torch.tensor([1]))
    tensor([[0, 0, 1, 1, 1, 2]])
    """
    is_end = (torch.isin(ids, end_ids) & mask).long()
    return torch.cumsum(is_end, dim=1) - is_end


class CoAttentionRound(nn.Module):
    """One bidirectional attention round with feed-forward + residual re-encoding."""

    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.affinity = nn.Linear(hidden, hidden, bias=False)
        self.scale = 1.0 / math.sqrt(hidden)
        self.query_ffn = _feed_forward(hidden, ffn)
        self.doc_ffn = _feed_forward(hidden, ffn)
        self.query_norm = nn.LayerNorm(hidden)
        self.doc_norm = nn.LayerNorm(hidden)

    def affinities(self, q: Tensor, d: Tensor) -> Tensor:
        """L = Q W D^T / sqrt(h): (B, Lq, Ld)."""
        return self.affinity(q) @ d.transpose(1, 2) * self.scale

    def forward(
        self, q: Tensor, q_mask: Tensor, d: Tensor, d_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Re-encoded (Q, D) and the affinity matrix this round attended with."""
        scores = self.affinities(q, d)
        q_context = masked_softmax(scores, d_mask.unsqueeze(1)) @ d  # query-to-document
        d_context = masked_softmax(scores.transpose(1, 2), q_mask.unsqueeze(1)) @ q
        q = self.query_norm(q + self.query_ffn(torch.cat([q, q_context], dim=-1)))
        d = self.doc_norm(d + self.doc_ffn(torch.cat([d, d_context], dim=-1)))
        return q, d, scores


def _feed_forward(hidden: int, ffn: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * hidden, ffn), nn.ReLU(), nn.Linear(ffn, hidden))


class AttentionPool(nn.Module):
    """Additive attention ``v^T tanh(W x + U c)`` over items, guided by a context vector c."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.item = nn.Linear(hidden, hidden)
        self.context = nn.Linear(hidden, hidden, bias=False)
        self.vector = nn.Linear(hidden, 1, bias=False)

    def logits(self, items: Tensor, context: Tensor) -> Tensor:
        """(B, *, L, h) items, (B, h) context -> (B, *, L) attention logits."""
        guide = self.context(context).view(context.shape[0], *([1] * (items.ndim - 2)), -1)
        return self.vector(torch.tanh(self.item(items) + guide)).squeeze(-1)


class CoAttention(InteractionModel):
    """Bidirectional co-attention with hierarchical (word -> sentence -> doc) pooling."""

    arch = "coattention"
    config_class = CoAttentionConfig

    def __init__(self, config: CoAttentionConfig, embeddings: TermEmbeddings) -> None:
        super().__init__(config, embeddings)
        hidden = config.hidden_dim
        self.projection = nn.Linear(embeddings.dim, hidden)
        self.rounds = nn.ModuleList(
            CoAttentionRound(hidden, config.ffn_dim) for _ in range(config.rounds)
        )
        self.register_buffer(
            "end_ids", torch.tensor(config.sentence_end_ids, dtype=torch.long), persistent=False
        )
        self.query_pool = nn.Sequential(
            nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False)
        )
        self.word_pool = AttentionPool(hidden)
        self.sentence_pool = AttentionPool(hidden)
        self.scorer = nn.Sequential(nn.Linear(4 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def encode(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Refined (Q, D) after all rounds, plus the last round's affinity (B, Lq, Ld)."""
        q = self.projection(self.embeddings(q_ids))
        d = self.projection(self.embeddings(d_ids))
        affinity = q.new_zeros(0)
        for layer in self.rounds:
            q, d, affinity = layer(q, q_mask, d, d_mask)
        return q, d, affinity

    def interaction_matrix(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """The last round's affinity matrix (B, Lq, Ld), zero at padding."""
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        affinity = self.encode(q_ids, q_mask, d_ids, d_mask)[2]
        return affinity * (q_mask.unsqueeze(-1) & d_mask.unsqueeze(-2)).to(affinity.dtype)

    def pool_document(self, d: Tensor, d_ids: Tensor, d_mask: Tensor, query: Tensor) -> Tensor:
        """Words -> sentences -> document, attention guided by the pooled query: (B, h)."""
        sentence = sentence_index(d_ids, d_mask, self.end_ids)
        n_sentences = int(sentence.masked_fill(~d_mask, 0).max()) + 1
        # members[b, s, j]: doc token j is a real token of sentence s (vectorised segmenting).
        members = sentence.unsqueeze(1) == torch.arange(n_sentences, device=d.device)[:, None]
        members = members & d_mask.unsqueeze(1)
        word_logits = self.word_pool.logits(d, query).unsqueeze(1)  # (B, 1, Ld)
        sentences = masked_softmax(word_logits.expand_as(members), members) @ d  # (B, S, h)
        weights = masked_softmax(self.sentence_pool.logits(sentences, query), members.any(-1))
        return (weights.unsqueeze(-1) * sentences).sum(1)

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        q, d, _ = self.encode(q_ids, q_mask, d_ids, d_mask)
        query_weights = masked_softmax(self.query_pool(q).squeeze(-1), q_mask)
        query = (query_weights.unsqueeze(-1) * q).sum(1)
        doc = self.pool_document(d, d_ids, d_mask, query)
        features = torch.cat([query, doc, query * doc, (query - doc).abs()], dim=-1)
        return self.scorer(features).squeeze(-1)
