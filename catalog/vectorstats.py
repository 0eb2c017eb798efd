"""Statistics of a class's vectors as a whole: how many, how tight, and their centroid.

Pure numpy, no database: the verdict (search.verdict) and its evaluation use it directly, and
catalog.classstats stores its results per class.
"""

from dataclasses import dataclass

import numpy as np

# How many closest classmates make an image's closeness to its class. The verdict measures a query's
# closeness to a class with the same depth, so the two compare.
CLASS_DEPTH = 3

# Tightness is exact, O(n^2 d), up to this many images; a bigger class has it measured on a sample of this
# many of its images, each against the whole class: O(n d) per sampled image, an unbiased estimate of the
# exact mean (10,000 images: about a second instead of a minute).
TIGHTNESS_SAMPLE = 500
# The sample depends only on the class's size (vectors come in id order): the same images give the same
# figure in every process.
SAMPLE_SEED = 20240613


@dataclass(frozen=True)
class ClassStats:
    """What the verdict knows of a class as a whole, from its searchable images' vectors."""

    count: int
    tightness: float | None  # mean similarity of an image to its CLASS_DEPTH closest classmates; None alone
    centroid: np.ndarray  # unit-length mean of the images' vectors
    tightness_sample: int = 0  # images whose closest classmates were measured: count, or TIGHTNESS_SAMPLE


def class_stats(vectors) -> ClassStats:
    """Statistics of a class from its images' unit vectors, shape (n, d) with n >= 1.

    Tightness mirrors the verdict's closeness: each image's mean similarity to its CLASS_DEPTH closest
    classmates (fewer in a small class), averaged over the class (or over a seeded sample of a big class).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    mean = vectors.mean(axis=0)
    centroid = mean / max(float(np.linalg.norm(mean)), 1e-12)
    tightness, measured = tightness_of(vectors)
    return ClassStats(count=len(vectors), tightness=tightness, centroid=centroid, tightness_sample=measured)


def tightness_of(vectors):
    """(tightness, how many images it was measured on) of unit vectors (n, d); (None, 0) for one image."""
    count = len(vectors)
    if count < 2:
        return None, 0
    rows = np.arange(count)
    if count > TIGHTNESS_SAMPLE:
        rows = np.sort(np.random.default_rng(SAMPLE_SEED).choice(count, TIGHTNESS_SAMPLE, replace=False))
    similarities = vectors[rows] @ vectors.T
    similarities[np.arange(len(rows)), rows] = -np.inf  # an image is not its own classmate
    depth = min(CLASS_DEPTH, count - 1)
    closest = -np.sort(-similarities, axis=1)[:, :depth]
    return float(closest.mean()), len(rows)
