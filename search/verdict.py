"""The verdict on a query: which catalog classes its nearest images stand for, how sure that answer is,
and whether anything like the query is in the catalog at all.

A pure function of the query's nearest neighbours, so it costs microseconds per query.

- classes: a kernel-weighted vote of the neighbours; a class's score is its share of the vote (they sum to 1).
- confidence: the estimated probability that the best class is right, which requires the query's class to
  be in the catalog at all; calibrated against "right class first" on classes never fitted on.
- match: confidence >= MATCH_THRESHOLD, i.e. something like the query is probably in the catalog.
Constants are fitted by ``python -m bench.eval_verdict --fit``; the method and its figures are in the
README.
"""

import math
from dataclasses import dataclass

import numpy as np

# How many nearest images the verdict wants to see (the service fetches max(k, NEIGHBOURS)).
NEIGHBOURS = 50

# Width of the similarity kernel of the class vote: a neighbour 0.05 less similar than the best one
# weighs e^-1 as much. Chosen on the tuning classes: of 0.01-1.0, 0.03-0.05 ranked the right class first
# most often at 5 and 30 images per class.
TEMPERATURE = 0.05

# How many of the best class's images make its "closeness" feature: several close images, not one.
CLASS_DEPTH = 3

# confidence = sigmoid(WEIGHT_CLOSENESS * closeness + WEIGHT_SHARE * share + BIAS): a logistic regression
# fitted, with MATCH_THRESHOLD, by `python -m bench.eval_verdict --fit` on the tuning classes only.
WEIGHT_CLOSENESS = 9.370
WEIGHT_SHARE = 3.514
BIAS = -7.009
# match = confidence >= MATCH_THRESHOLD: the cut that best separates in-catalog from out-of-catalog queries.
MATCH_THRESHOLD = 0.37


@dataclass
class Neighbour:
    image_id: int
    class_id: int
    similarity: float  # 1 - cosine distance


@dataclass
class ClassScore:
    class_id: int
    score: float


@dataclass
class Verdict:
    match: bool
    confidence: float
    classes: list[ClassScore]  # best first


def class_votes(similarities, class_ids):
    """Kernel-weighted vote: each neighbour adds exp((s - s_best) / T) to its class; shares sum to 1.

    Returns (class ids, shares), best first; ties keep the order of the classes' best neighbours.
    """
    weights = np.exp((similarities - similarities[0]) / TEMPERATURE)
    order, first_seen = np.unique(class_ids, return_index=True)
    totals = np.zeros(len(order))
    np.add.at(totals, np.searchsorted(order, class_ids), weights)
    ranking = np.lexsort((first_seen, -totals))
    return order[ranking], totals[ranking] / totals.sum()


def features(similarities, class_ids):
    """(class ids best first, their vote shares, closeness of the best class).

    Closeness is the mean similarity of the best class's CLASS_DEPTH closest images (fewer if the list
    holds fewer): a class the query really belongs to has several close images, not one.
    """
    ranked, shares = class_votes(similarities, class_ids)
    closeness = similarities[class_ids == ranked[0]][:CLASS_DEPTH].mean()
    return ranked, shares, float(closeness)


def confidence_of(closeness, share):
    """Estimated probability that the best class is the query's class and that class is in the catalog."""
    logit = WEIGHT_CLOSENESS * closeness + WEIGHT_SHARE * share + BIAS
    return 1.0 / (1.0 + math.exp(-logit))


def judge(neighbours: list[Neighbour]) -> Verdict:
    if not neighbours:
        return Verdict(match=False, confidence=0.0, classes=[])
    neighbours = sorted(neighbours, key=lambda n: -n.similarity)
    similarities = np.array([n.similarity for n in neighbours], dtype=float)
    class_ids = np.array([n.class_id for n in neighbours])
    ranked, shares, closeness = features(similarities, class_ids)
    confidence = confidence_of(closeness, float(shares[0]))
    return Verdict(
        match=confidence >= MATCH_THRESHOLD,
        confidence=confidence,
        classes=[ClassScore(int(c), float(s)) for c, s in zip(ranked, shares, strict=True)],
    )
