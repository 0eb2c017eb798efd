"""The verdict on a query: which catalog classes its nearest images stand for, how sure that answer is,
and whether anything like the query is in the catalog at all.

A function of the query's nearest neighbours and of a few statistics of the best class, so it costs
microseconds per query once the class's statistics are stored (catalog.classstats).

- classes: a kernel-weighted vote of the neighbours; a class's score is its share of the vote (they sum to 1).
- confidence: the estimated probability that the best class is right, which requires the query's class to
  be in the catalog at all; calibrated against "right class first" on classes never fitted on. It weighs
  how close the query comes to the best class's centroid against how close that class's own images come
  to each other (its tightness): a per-class threshold, where one fixed cut-off fails because some classes
  are loose (varied photos) and others tight (near-identical ones).
- state: the answer in one word (state_of): "match", confidence >= MATCH_THRESHOLD, i.e. something like the
  query is probably in the catalog; "closest", not a match but a best class worth naming (confidence >=
  CLOSEST_CONFIDENCE); "no_match", the neighbours agree on nothing worth a name. "catalog" (known) is for
  a query that is itself a catalog picture, whose class is known.
- match: state "match" or "catalog" (is_match).
Constants are fitted by ``python -m bench.eval_verdict --fit``; the method and its figures are in the
README.
"""

import math
from dataclasses import dataclass

import numpy as np

# The best class's statistics are the catalog's (catalog.classstats stores them per class); closeness
# looks as deep into a class (CLASS_DEPTH images) as its tightness does. Re-exported for the evaluation.
from catalog.vectorstats import CLASS_DEPTH, ClassStats, class_stats  # noqa: F401

# How many nearest images the verdict wants to see (the service fetches max(k, NEIGHBOURS)).
NEIGHBOURS = 50

# Width of the similarity kernel of the class vote: a neighbour 0.05 less similar than the best one
# weighs e^-1 as much. Chosen on the tuning classes: of 0.01-1.0, 0.03-0.05 ranked the right class first
# most often at 5 and 30 images per class.
TEMPERATURE = 0.05

# confidence = sigmoid(WEIGHT_CENTROID * centroid similarity + WEIGHT_SHARE * share
#                      + WEIGHT_TIGHTNESS * tightness + BIAS):
# a logistic regression fitted, with MATCH_THRESHOLD, by `python -m bench.eval_verdict --fit` on the tuning
# classes only. Tightness weighs against similarity: a query must come as close to a class as its images
# usually come to each other.
WEIGHT_CENTROID = 19.436
WEIGHT_SHARE = 2.674
WEIGHT_TIGHTNESS = -11.514
BIAS = -6.622
# match = confidence >= MATCH_THRESHOLD: the cut that best separates in-catalog from out-of-catalog queries.
MATCH_THRESHOLD = 0.40
# state "closest" = not a match, but confidence >= CLOSEST_CONFIDENCE: the best class is a guess worth
# naming (right about one time in five on the evaluation classes), where below it the neighbours agree on nothing worth a name.
# Chosen on the tuning classes by `python -m bench.eval_verdict --closest`, which also tried the best
# class's vote share (no better than chance on the evaluation classes); the figures are in the README.
CLOSEST_CONFIDENCE = 0.15

MATCH, CLOSEST, NO_MATCH, CATALOG = "match", "closest", "no_match", "catalog"
# What each state says, for the API's schema and whoever reads a state.
STATES = {
    MATCH: f"the first class is probably right: confidence >= {MATCH_THRESHOLD}",
    CLOSEST: f"not a match, but the first class is worth naming, with low confidence (>= {CLOSEST_CONFIDENCE})",
    NO_MATCH: f"nothing in the catalog looks like the query: confidence < {CLOSEST_CONFIDENCE}",
    CATALOG: "the query is a catalog picture (more like this): the first class is its own, known, not guessed",
}

# Stand-ins when a class's statistics are unknown: its tightness (a class of one image has none) is the
# median over the tuning queries' best classes; its centroid similarity becomes the closeness, a rough
# stand-in that runs 0.05-0.09 lower, so a verdict without statistics errs towards "no match" (the
# service always passes them).
TYPICAL_TIGHTNESS = 0.656


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
    state: str  # one of STATES
    confidence: float
    classes: list[ClassScore]  # best first (for CATALOG, the query's own class first)

    @property
    def match(self):
        return is_match(self.state)


def is_match(state):
    """Something like the query is in the catalog: a match, or the query is a catalog picture."""
    return state in (MATCH, CATALOG)


def state_of(confidence, closest_confidence=CLOSEST_CONFIDENCE):
    """The answer in one word: a match, else the closest class if it is worth naming, else no match.

    closest_confidence is there for the evaluation, which tries other values.
    """
    if confidence >= MATCH_THRESHOLD:
        return MATCH
    return CLOSEST if confidence >= closest_confidence else NO_MATCH


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


def confidence_features(closeness, query, stats):
    """(similarity of the query to the class's centroid, the class's tightness), with stand-ins."""
    centroid_similarity = closeness
    if stats is not None and query is not None:
        centroid_similarity = float(np.dot(np.asarray(query, dtype=np.float64), stats.centroid))
    tightness = TYPICAL_TIGHTNESS if stats is None or stats.tightness is None else stats.tightness
    return centroid_similarity, tightness


def confidence_of(centroid_similarity, share, tightness):
    """Estimated probability that the best class is the query's class and that class is in the catalog."""
    logit = WEIGHT_CENTROID * centroid_similarity + WEIGHT_SHARE * share + WEIGHT_TIGHTNESS * tightness + BIAS
    return 1.0 / (1.0 + math.exp(-logit))


def known(judged: Verdict, class_id) -> Verdict:
    """The verdict on a query whose class is known (a catalog picture): that class first, sure.

    Its score stays its share of the neighbours' vote (0 when no neighbour is of it), so the scores still
    say what the neighbours are; confidence is 1 because the class is known, not guessed.
    """
    own = [c for c in judged.classes if c.class_id == class_id] or [ClassScore(class_id, 0.0)]
    others = [c for c in judged.classes if c.class_id != class_id]
    return Verdict(state=CATALOG, confidence=1.0, classes=own + others)


def judge(neighbours: list[Neighbour], query=None, class_stats_of=None) -> Verdict:
    """Judge a query from its nearest neighbours.

    query: the query's unit vector; class_stats_of: class id -> ClassStats (or None when unknown), asked
    about the best class only. Without them the verdict falls back on the neighbour list alone, with
    TYPICAL_TIGHTNESS: it ranks as well as it did before class statistics, but under-confidently.
    """
    if not neighbours:
        return Verdict(state=NO_MATCH, confidence=0.0, classes=[])
    neighbours = sorted(neighbours, key=lambda n: -n.similarity)
    similarities = np.array([n.similarity for n in neighbours], dtype=float)
    class_ids = np.array([n.class_id for n in neighbours])
    ranked, shares, closeness = features(similarities, class_ids)
    stats = class_stats_of(int(ranked[0])) if class_stats_of is not None else None
    centroid_similarity, tightness = confidence_features(closeness, query, stats)
    confidence = confidence_of(centroid_similarity, float(shares[0]), tightness)
    return Verdict(
        state=state_of(confidence),
        confidence=confidence,
        classes=[ClassScore(int(c), float(s)) for c, s in zip(ranked, shares, strict=True)],
    )
