"""RBF kernel pooling over a translation (similarity) matrix, as in K-NRM (Xiong et al., 2017).

Each kernel k counts soft matches of a query term with the document terms around its mean:
``soft_tf[i, k] = sum_j exp(-(s_ij - mu_k)^2 / (2 sigma_k^2))``; the kernel feature is
``phi_k = sum_i log(max(soft_tf[i, k], 1e-10))`` over real query terms.

Example:
    >>> import torch
    >>> sim = torch.tensor([[[1.0, 0.5]]])
    >>> mask = torch.tensor([[True]]), torch.tensor([[True, True]])
    >>> kernel_pooling(sim, *mask, mus=torch.tensor([1.0]), sigmas=torch.tensor([0.001]))
    tensor([[0.]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from crossrank.errors import ConfigError, require_positive

__all__ = [
    "EXACT_MATCH_MU",
    "default_kernel_mus",
    "kernel_pooling",
    "kernel_sigmas",
    "kernel_tensors",
    "log_soft_tf",
    "validate_kernels",
]

EXACT_MATCH_MU = 1.0
# The floor inside the log: a query term no kernel fires on contributes log(1e-10) ~ -23.
SOFT_TF_FLOOR = 1e-10
EXPONENT_FLOOR = -80.0


def default_kernel_mus(n_kernels: int = 11) -> tuple[float, ...]:
    """The exact-match mean 1.0 then ``n_kernels - 1`` bin centres evenly covering [-1, 1].

    >>> default_kernel_mus(11)
    (1.0, 0.9, 0.7, 0.5, 0.3, 0.1, -0.1, -0.3, -0.5, -0.7, -0.9)
    """
    if isinstance(n_kernels, bool) or not isinstance(n_kernels, int) or n_kernels < 2:
        raise ConfigError(f"n_kernels must be an int >= 2, got {n_kernels!r}")
    width = 2.0 / (n_kernels - 1)
    soft = [round(1.0 - width / 2 - width * i, 10) for i in range(n_kernels - 1)]
    return (EXACT_MATCH_MU, *soft)


def kernel_sigmas(
    mus: Sequence[float], sigma: float = 0.1, exact_sigma: float = 1e-3
) -> tuple[float, ...]:
    """One width per mean: ``exact_sigma`` for the exact-match kernel (mu = 1), else ``sigma``.

    >>> kernel_sigmas((1.0, 0.5))
    (0.001, 0.1)
    """
    return tuple(exact_sigma if mu == EXACT_MATCH_MU else sigma for mu in mus)


def kernel_tensors(mus: Sequence[float], sigma: float, exact_sigma: float) -> tuple[Tensor, Tensor]:
    """(mus, sigmas) as float32 tensors of shape (K,).

    >>> kernel_tensors((1.0, 0.0), 0.1, 1e-3)[1]
    tensor([0.0010, 0.1000])
    """
    return torch.tensor(tuple(mus)), torch.tensor(kernel_sigmas(mus, sigma, exact_sigma))


def validate_kernels(mus: Sequence[float], sigma: float, exact_sigma: float) -> None:
    """Raise ConfigError unless the means are distinct, in [-1, 1], with exactly one at 1.0."""
    require_positive("kernel_sigma", sigma)
    require_positive("exact_sigma", exact_sigma)
    if not mus or any(not -1.0 <= mu <= 1.0 for mu in mus):
        raise ConfigError(f"kernel_mus must be non-empty and within [-1, 1], got {tuple(mus)}")
    if len(set(mus)) != len(mus):
        raise ConfigError(f"kernel_mus must be distinct, got {tuple(mus)}")
    if sum(mu == EXACT_MATCH_MU for mu in mus) != 1:
        raise ConfigError(f"kernel_mus must contain the exact-match mean 1.0, got {tuple(mus)}")


def log_soft_tf(sim: Tensor, d_mask: Tensor, mus: Tensor, sigmas: Tensor) -> Tensor:
    """Per-query-term log soft-TF: (*, Lq, Ld) similarities -> (*, Lq, K).

    Padded document terms contribute nothing; query padding is left to the caller.
    """
    coefficients = -0.5 / (sigmas * sigmas)
    d_weights = d_mask.unsqueeze(-2).to(sim.dtype)  # (*, 1, Ld)
    # One (*, Lq, Ld) slice per kernel rather than one (*, Lq, Ld, K) tensor: the temporaries
    # stay cache-sized, which is several times faster on CPU. K is small (11).
    soft_tf = [
        (torch.exp(_gaussian_exponent(sim, mu, c)) * d_weights).sum(-1)
        for mu, c in zip(mus.unbind(), coefficients.unbind(), strict=True)
    ]
    return torch.log(torch.stack(soft_tf, dim=-1).clamp_min(SOFT_TF_FLOOR))


def _gaussian_exponent(sim: Tensor, mu: Tensor, coefficient: Tensor) -> Tensor:
    # exp() of arguments below ~-87 takes a slow path on CPU; clamping at -80 changes nothing
    # visible: e^-80 ~ 1.8e-35 per term is far below the 1e-10 soft-TF floor.
    return ((sim - mu).square() * coefficient).clamp_min(EXPONENT_FLOOR)


def kernel_pooling(
    sim: Tensor, q_mask: Tensor, d_mask: Tensor, mus: Tensor, sigmas: Tensor
) -> Tensor:
    """K-NRM kernel features: (*, Lq, Ld) similarities with masks (*, Lq), (*, Ld) -> (*, K).

    ``phi_k = sum_i log(clamp(sum_j exp(-(s_ij - mu_k)^2 / (2 sigma_k^2)), min=1e-10))``
    over real query terms i and real document terms j.

    >>> sim = torch.tensor([[[0.9, 0.8], [0.5, 0.0]]])  # the second query term is padding
    >>> q_mask, d_mask = torch.tensor([[True, False]]), torch.tensor([[True, True]])
    >>> kernel_pooling(sim, q_mask, d_mask, torch.tensor([0.9]), torch.tensor([0.1]))  # log(1 + e^-0.5)
    tensor([[0.4741]])
    """
    per_term = log_soft_tf(sim, d_mask, mus, sigmas)
    return (per_term * q_mask.unsqueeze(-1).to(sim.dtype)).sum(-2)
