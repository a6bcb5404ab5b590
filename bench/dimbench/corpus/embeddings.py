"""Embeddings from a latent topic structure, shaped like OpenAI's.

A chunk's latent vector = its topic's + document drift + chunk drift, in a low-dimensional space (real
embeddings have low intrinsic dimension: that is why hnsw finds their neighbours easily; isotropic noise
in 1536 dims would give recall ~0.5 and mislead the study). A fixed random projection lifts it to 1536
dims with a Matryoshka energy profile (early dims carry more energy), plus isotropic noise.

The 768-d embedding is the first 768 dims, renormalized (what the API's `dimensions=768` returns).
`matryoshka_tail_share` is the share of the signal carried by a second latent factor that only dims
768..1535 express: the prefix cannot see it, which is what makes 768 and 1536 disagree on neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimbench.corpus.spec import Spec

DIM = 1536
PREFIX = 768


@dataclass
class Projection:
    main: np.ndarray  # (L, 1536) latent -> all dims
    tail: np.ndarray  # (L, 1536) tail-only latent -> dims 768.. (zero on the prefix)
    weights: np.ndarray  # (1536,) Matryoshka energy profile
    ada: np.ndarray  # (L, 1536) independent projection for the ada-like embedding
    ada_mean: np.ndarray  # (1536,) the common direction that makes ada anisotropic


def projection(spec: Spec) -> Projection:
    rng = np.random.default_rng([spec.seed, 0])
    L = spec.latent_dim
    weights = (1.0 + np.arange(DIM) / 256.0) ** -spec.matryoshka_decay
    energy_prefix = float((weights[:PREFIX] ** 2).sum())
    energy_tail = float((weights[PREFIX:] ** 2).sum())
    # Mix in the tail-only factor so it carries `tail_share` of the total energy (capped at the tail's own).
    alpha = min(1.0, spec.matryoshka_tail_share * (energy_prefix + energy_tail) / energy_tail)
    main = rng.standard_normal((L, DIM)) * weights
    main[:, PREFIX:] *= np.sqrt(1.0 - alpha)
    tail = rng.standard_normal((L, DIM)) * weights
    tail[:, :PREFIX] = 0.0
    tail[:, PREFIX:] *= np.sqrt(alpha)
    ada = rng.standard_normal((L, DIM))
    ada_mean = rng.standard_normal(DIM)
    ada_mean /= np.linalg.norm(ada_mean)
    return Projection(
        main.astype(np.float32),
        tail.astype(np.float32),
        weights.astype(np.float32),
        ada.astype(np.float32),
        ada_mean.astype(np.float32),
    )


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def embed(
    proj: Projection, latent: np.ndarray, tail_latent: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """(n, L) latents -> (n, 1536) unit vectors."""
    signal = latent @ proj.main + tail_latent @ proj.tail
    scale = np.sqrt((proj.weights**2).mean())
    jitter = rng.standard_normal(signal.shape).astype(np.float32) * (
        noise * scale * proj.weights / proj.weights.mean()
    )
    return normalize(signal + jitter)


def embed_ada(proj: Projection, latent: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """An independent 'ada-like' embedding: same topics, another projection, anisotropic (cos ≈ 0.7)."""
    own = normalize(latent @ proj.ada + noise * rng.standard_normal((len(latent), DIM)).astype(np.float32))
    return normalize(0.85 * proj.ada_mean + 0.5 * own)


def shorten(emb_1536: np.ndarray) -> np.ndarray:
    """The 768-d embedding: truncate, then L2-renormalize."""
    return normalize(emb_1536[..., :PREFIX])
