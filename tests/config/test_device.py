"""device=auto: the GPU only for jobs large enough to gain from it (a default 2×2 run was 2.4×
slower on an H100 than on its host's CPU: every step is a few dozen tiny kernels)."""

import torch

from implicit_reg.config.device import GPU_MIN_ENTRIES, resolve_device


def test_auto_keeps_small_jobs_on_the_cpu_even_with_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        assert resolve_device("auto", 12) == torch.device("cpu")  # one 2×2 run at depth 3
        assert resolve_device("auto", 12 * 10**4) == torch.device("cuda")  # 10⁴ of them
        assert resolve_device("auto", GPU_MIN_ENTRIES) == torch.device("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 is False  # true float32 on the GPU
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def test_auto_without_a_gpu_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", 10**9) == torch.device("cpu")
