"""Distribution metrics on feature vectors: FID, KID, precision/recall (k-NN manifolds) and class coverage.

numpy only (scipy is used for the matrix square root when it happens to be installed; it is not a dependency).
Every function takes features as float arrays [N, D] (rows are images) and returns plain Python floats, so the
same code scores a generator against real data, a variant against its fp32 model, and real data against itself.

References:
    FID: Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash equilibrium".
    KID: Binkowski et al. 2018, "Demystifying MMD GANs" (unbiased MMD^2, cubic polynomial kernel, subsets).
    Precision/recall: Kynkaanniemi et al. 2019, "Improved precision and recall metric for assessing generative
    models" (k-th nearest neighbour balls, k = 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "feature_stats",
    "frechet_distance",
    "trace_sqrt_product",
    "fid_from_features",
    "kernel_inception_distance",
    "precision_recall",
    "kth_neighbour_radii",
    "class_coverage",
    "mean_pairwise_distance",
    "KID",
    "Coverage",
]

PR_NEIGHBOURS = 3  # Kynkaanniemi et al. use k = 3
KID_SUBSETS = 100  # torch-fidelity's and Binkowski et al.'s defaults
KID_SUBSET_SIZE = 1000
_ROW_CHUNK = 1024  # rows of a pairwise-distance block: 1024 x N float64 (80 MB at N = 10k)


def _as_features(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{what} must be a feature matrix [N >= 2, D], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return x.astype(np.float64, copy=False)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, in float64.

    Args:
        features: [N, D], N >= 2.

    Returns:
        (mu [D], sigma [D, D]) with the unbiased (N - 1) covariance, as pytorch-fid computes it.
    """
    f = _as_features(features, "features")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sym_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix through its eigen-decomposition; negative rounding noise -> 0."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _trace_sqrt_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) = tr sqrt(A S2 A) with A = S1^(1/2): A S2 A is symmetric PSD, so its eigenvalues are real
    and >= 0 (up to rounding, clipped), and no complex arithmetic or non-symmetric square root is needed."""
    root1 = _sym_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def _trace_sqrt_scipy(sigma1: np.ndarray, sigma2: np.ndarray) -> float | None:
    """pytorch-fid's route: scipy.linalg.sqrtm of the (non-symmetric) product. None (the caller then takes the
    eigen route) when scipy is missing, when it warns that the product is singular (dead features: its Schur
    method is then inaccurate), or when the root is not finite or keeps a large imaginary part."""
    try:
        import warnings

        from scipy import linalg
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(sigma1 @ sigma2)
        except (linalg.LinAlgWarning, linalg.LinAlgError, ValueError):
            return None
    if not np.isfinite(covmean).all():
        return None
    if np.iscomplexobj(covmean):
        scale = max(float(np.abs(covmean).max()), 1e-12)
        if np.abs(covmean.imag).max() > 1e-3 * scale:
            return None  # a genuinely complex root: rounding broke the PSD structure; the eigen route holds it
        covmean = covmean.real
    value = float(np.trace(covmean))
    return value if math.isfinite(value) else None


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "auto") -> float:
    """tr((S1 S2)^(1/2)) for two covariance matrices.

    Args:
        sigma1, sigma2: [D, D] symmetric PSD.
        method: "scipy" (scipy.linalg.sqrtm of S1 S2 as pytorch-fid does; falls back to "eigh" where scipy is
            missing, warns of a singular product or returns a non-finite or complex root), "eigh" (numpy only:
            the eigenvalues of S1^(1/2) S2 S1^(1/2), exact for PSD matrices), or "auto" (= "scipy").

    Returns:
        The trace, >= 0.
    """
    if method not in ("auto", "scipy", "eigh"):
        raise ValueError(f"unknown sqrtm method {method!r}; choose auto, scipy or eigh")
    if method in ("auto", "scipy"):
        value = _trace_sqrt_scipy(sigma1, sigma2)
        if value is not None:
            return value
    return _trace_sqrt_eigh(sigma1, sigma2)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, method: str = "auto"
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2): |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Args:
        mu1, mu2: [D] means. sigma1, sigma2: [D, D] covariances (float64 recommended).
        method: matrix square root route, see `trace_sqrt_product`.

    Returns:
        The distance, clipped at 0 (rounding can leave identical statistics at -1e-12).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}"
        )
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2, method))
    return max(value, 0.0)


def fid_from_features(a: np.ndarray, b: np.ndarray, method: str = "auto") -> float:
    """FID between two feature sets [N1, D] and [N2, D]."""
    return frechet_distance(*feature_stats(a), *feature_stats(b), method=method)


@dataclass(frozen=True)
class KID:
    """Kernel distance: mean and standard deviation over subsets, with the subset count and size used."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0
) -> KID:
    """Unbiased MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets.

    Args:
        a, b: feature sets [N1, D], [N2, D].
        subsets: number of subset pairs drawn.
        subset_size: rows per subset (capped at min(N1, N2)); each subset is drawn without replacement.
        seed: seed of the subset draws.

    Returns:
        KID(mean, std, subsets, subset_size). The estimate is unbiased for independent samples, so two samples
        of one distribution give values scattered around 0 (slightly negative ones included). A set against
        itself is not two independent samples: subsets then share rows and the estimate comes out below 0.
    """
    x_all, y_all = _as_features(a, "first feature set"), _as_features(b, "second feature set")
    if x_all.shape[1] != y_all.shape[1]:
        raise ValueError(f"feature sizes differ: {x_all.shape[1]} vs {y_all.shape[1]}")
    m = min(subset_size, len(x_all), len(y_all))
    if m < 2 or subsets < 1:
        raise ValueError(f"KID needs subsets >= 1 of >= 2 rows, got {subsets} of {m}")
    # float32 products (the cost: 3 x m^2 x D per subset), float64 kernel values and sums.
    x_all, y_all = x_all.astype(np.float32), y_all.astype(np.float32)
    scale = 1.0 / x_all.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)

    def kernel(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        k = (p @ q.T).astype(np.float64)  # [m, m]
        k *= scale
        k += 1.0
        return k * k * k

    for s in range(subsets):
        x = x_all[rng.choice(len(x_all), m, replace=False)]  # [m, D]
        y = y_all[rng.choice(len(y_all), m, replace=False)]
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[s] = within - 2.0 * k_xy.mean()
    return KID(float(values.mean()), float(values.std(ddof=1)) if subsets > 1 else 0.0, subsets, m)


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _sq_distances(x: np.ndarray, x_norms: np.ndarray, y: np.ndarray, y_norms: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(x), len(y)], clipped at 0 (|a|^2 + |b|^2 - 2ab rounds below 0)."""
    d = x @ y.T  # float32: half the memory traffic of float64, and the k-th-neighbour selection dominates anyway
    d *= -2.0
    d += x_norms[:, None]
    d += y_norms[None, :]
    return np.maximum(d, 0.0, out=d)


def kth_neighbour_radii(x: np.ndarray, k: int = PR_NEIGHBOURS) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row.

    Args:
        x: features [N, D] (computed in float32).
        k: neighbour rank.

    Returns:
        float32 [N]. A real reference's radii can be cached and passed to `precision_recall`.
    """
    x = np.asarray(x, np.float32)
    norms = _sq_norms(x)
    radii = np.empty(len(x), np.float32)
    for start in range(0, len(x), _ROW_CHUNK):
        block = _sq_distances(x[start : start + _ROW_CHUNK], norms[start : start + _ROW_CHUNK], x, norms)
        radii[start : start + _ROW_CHUNK] = np.partition(block, k, axis=1)[:, k]  # index 0 is the row itself
    return radii


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = PR_NEIGHBOURS, real_radii: np.ndarray | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) in feature space.

    Each set's manifold is the union of balls around its points with radius = distance to the point's k-th
    nearest neighbour in the same set. Precision: share of fake points inside the real manifold. Recall: share
    of real points inside the fake manifold.

    Args:
        real, fake: feature sets [N1, D], [N2, D], each with more than k rows.
        k: neighbour rank of the ball radius.
        real_radii: `kth_neighbour_radii(real, k)` when already known (cached with the reference statistics).

    Returns:
        (precision, recall), each in [0, 1]; identical sets give (1.0, 1.0).
    """
    r, f = _as_features(real, "real features"), _as_features(fake, "generated features")
    if min(len(r), len(f)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} rows in each set, got {len(r)} and {len(f)}")
    r, f = r.astype(np.float32), f.astype(np.float32)
    r_radii = kth_neighbour_radii(r, k) if real_radii is None else np.asarray(real_radii, np.float32)
    if r_radii.shape != (len(r),):
        raise ValueError(f"real_radii has shape {list(r_radii.shape)}, expected [{len(r)}]")
    f_radii = kth_neighbour_radii(f, k)
    r_norms, f_norms = _sq_norms(r), _sq_norms(f)
    # Rounding slack: |a|^2 + |b|^2 - 2ab in float32 is off by a few ulps of |a|^2, so a point's distance to an
    # identical point can come out above a radius of 0 (duplicates). 1e-5 of the mean squared norm covers that
    # and stays far below real neighbour distances.
    tol = np.float32(1e-5 * (float(r_norms.mean()) + float(f_norms.mean())))
    fake_inside = np.zeros(len(f), bool)
    real_inside = np.zeros(len(r), bool)
    for start in range(0, len(f), _ROW_CHUNK):
        stop = start + _ROW_CHUNK
        d = _sq_distances(f[start:stop], f_norms[start:stop], r, r_norms)  # [chunk of fakes, N_real]
        fake_inside[start:stop] = (d <= r_radii[None, :] + tol).any(axis=1)
        real_inside |= (d <= f_radii[start:stop, None] + tol).any(axis=0)
    return float(fake_inside.mean()), float(real_inside.mean())


def mean_pairwise_distance(x: np.ndarray, max_rows: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance between two different rows of a set: how spread out it is (its diversity).

    A set of identical rows (a generator that ignores z) gives 0; two samples of one distribution give the same
    figure up to noise, so generated/real of this figure is near 1 for a faithful generator.

    Args:
        x: [N, D], N >= 2.
        max_rows: above this many rows a seeded random subset of max_rows rows is used (the mean over pairs is
            unbiased for any subset size; 2000 rows = 2 million pairs, a few milliseconds).
        seed: seed of that subset.

    Returns:
        The mean over the N (N - 1) / 2 pairs, >= 0.
    """
    f = _as_features(x, "features")
    if len(f) > max_rows:
        f = f[np.sort(np.random.default_rng(seed).choice(len(f), max_rows, replace=False))]
    # float64: identical rows must come out at ~0, not at the sqrt of float32 rounding noise of |a|^2
    f = f - f.mean(axis=0)  # distances do not change; centring keeps |a|^2 + |b|^2 - 2ab accurate
    norms = _sq_norms(f)
    n = len(f)
    total = 0.0
    for start in range(0, n, _ROW_CHUNK):
        block = _sq_distances(f[start : start + _ROW_CHUNK], norms[start : start + _ROW_CHUNK], f, norms)
        rows = np.arange(len(block))
        block[rows, start + rows] = 0.0  # a row's distance to itself
        total += float(np.sqrt(block, out=block).sum())
    return total / (n * (n - 1))  # every pair is counted twice


@dataclass(frozen=True)
class Coverage:
    """How a set of images spreads over the evaluator's classes.

    entropy: normalised entropy of the predicted-class histogram, 1.0 = every class equally often, 0 = one class.
    histogram: share of images predicted as each class [K].
    confidence: mean of the top softmax probability.
    per_class: for conditional generators, share of images asked for class k that the evaluator calls k (None
        otherwise; None for a class no image asked for); label_accuracy: their mean over the classes asked for.
    """

    entropy: float
    histogram: list[float]
    confidence: float
    per_class: list[float | None] | None = None
    label_accuracy: float | None = None


def class_coverage(probs: np.ndarray, labels: np.ndarray | None = None) -> Coverage:
    """Class coverage and confidence from evaluator softmax outputs.

    Args:
        probs: class probabilities [N, K] (rows sum to 1).
        labels: int [N] labels the images were asked for (conditional generators), or None.

    Returns:
        Coverage.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2:
        raise ValueError(f"probabilities must be [N >= 1, K >= 2], got shape {list(probs.shape)}")
    n, k = probs.shape
    predicted = probs.argmax(axis=1)
    histogram = np.bincount(predicted, minlength=k) / n
    nonzero = histogram[histogram > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum() / math.log(k))
    per_class = accuracy = None
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        if labels.shape != (n,) or labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"labels must be [N] = [{n}] in [0, {k}), got shape {list(labels.shape)}")
        # None for a class no image was asked for (a generator given a subset of labels)
        per_class = [float((predicted[labels == c] == c).mean()) if (labels == c).any() else None for c in range(k)]
        accuracy = float(np.mean([p for p in per_class if p is not None]))
    return Coverage(entropy, histogram.tolist(), float(probs.max(axis=1).mean()), per_class, accuracy)
