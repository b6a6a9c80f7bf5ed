"""Exact polytope fixtures, unit feature vectors as columns (dims k), and W built from them.

Each polytope's k vectors form a uniform tight frame in its d dims, so every feature has D_i = d/k.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def orthogonal(n: int) -> np.ndarray:
    """n features with a dimension each: D = 1."""
    return np.eye(n)


def antipodal_pair() -> np.ndarray:
    """Two features on one line, opposite ways: D = 1/2."""
    return np.array([[1.0, -1.0]])


def polygon(k: int, phase: float = 0.0) -> np.ndarray:
    """Regular k-gon in 2-D: D = 2/k (a triangle for k = 3: the 2-simplex, 2/3)."""
    angles = phase + 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angles), np.sin(angles)])


def tetrahedron() -> np.ndarray:
    """Regular tetrahedron in 3-D, cosines −1/3: D = 3/4."""
    return np.array([[1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]]) / math.sqrt(3)


def square_antiprism() -> np.ndarray:
    """Two squares at z = ±1/√3 of radius √(2/3), the lower turned 45°: D = 3/8."""
    r, z = math.sqrt(2 / 3), 1 / math.sqrt(3)

    def square(phase: float, height: float) -> np.ndarray:
        angles = phase + np.pi / 2 * np.arange(4)
        return np.stack([r * np.cos(angles), r * np.sin(angles), np.full(4, height)])

    return np.concatenate([square(0.0, z), square(np.pi / 4, -z)], axis=1)


def tegum(
    blocks: list[np.ndarray],
    d_hidden: int,
    n_dead: int = 0,
    seed: int | None = 0,
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """One instance's W (hidden feats) with the blocks in mutually orthogonal subspaces, plus
    n_dead zero columns; then a random rotation of hidden space and a shuffle of the features,
    so nothing is axis-aligned or contiguous (seed None: neither).

    Returns W (float64) and, per block, the feature indices its columns ended up at.
    """
    n_feats = sum(b.shape[1] for b in blocks) + n_dead
    if sum(b.shape[0] for b in blocks) > d_hidden:
        raise ValueError("blocks need more dimensions than d_hidden")
    W = np.zeros((d_hidden, n_feats))
    row = col = 0
    for b in blocks:
        W[row : row + b.shape[0], col : col + b.shape[1]] = b
        row, col = row + b.shape[0], col + b.shape[1]
    perm = np.arange(n_feats)
    if seed is not None:
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((d_hidden, d_hidden)))
        perm = rng.permutation(n_feats)
        W = rotation @ W
    # column c of the old W moves to position where[c]
    where = np.empty(n_feats, dtype=np.int64)
    where[perm] = np.arange(n_feats)
    W = W[:, perm]
    starts = np.cumsum([0] + [b.shape[1] for b in blocks])
    placed = [np.sort(where[starts[n] : starts[n + 1]]) for n in range(len(blocks))]
    return torch.from_numpy(W), placed
