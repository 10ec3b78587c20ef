"""SDPA without cuDNN attention on CUDA, process-wide only while the context is open."""

from __future__ import annotations

import torch

from crossrank.models.attention_kernels import attention_kernels


def test_cuda_context_turns_cudnn_attention_off_and_restores_it() -> None:
    before = torch.backends.cuda.cudnn_sdp_enabled()
    with attention_kernels(torch.device("cuda"), cudnn=False):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_cpu_or_cudnn_allowed_changes_nothing() -> None:
    torch.backends.cuda.enable_cudnn_sdp(True)
    for device, cudnn in ((torch.device("cpu"), False), (torch.device("cuda"), True)):
        with attention_kernels(device, cudnn=cudnn):
            assert torch.backends.cuda.cudnn_sdp_enabled()
