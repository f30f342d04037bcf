"""The machine's own reference figure, printed beside every benchmark's numbers."""

from __future__ import annotations

import time


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GEMM rate (torch.mm n x n, best of ``repeats``) in GFLOP/s."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9
