"""The verdict: classes ranked by their images' evidence, a calibrated confidence, an honest no-match."""

import numpy as np
import pytest

from search.verdict import (
    BIAS,
    CATALOG,
    CLOSEST,
    CLOSEST_CONFIDENCE,
    MATCH,
    MATCH_THRESHOLD,
    NEIGHBOURS,
    NO_MATCH,
    TYPICAL_TIGHTNESS,
    WEIGHT_CENTROID,
    WEIGHT_SHARE,
    WEIGHT_TIGHTNESS,
    ClassStats,
    Neighbour,
    class_stats,
    judge,
    known,
    state_of,
)


def neighbours(*pairs):
    """Neighbours from (class id, similarity) pairs, best first."""
    ordered = sorted(pairs, key=lambda pair: -pair[1])
    return [Neighbour(image_id=i, class_id=c, similarity=s) for i, (c, s) in enumerate(ordered)]


def scattered(top, step=0.004, classes=25):
    """A list where every neighbour belongs to another class than the last: no class stands out."""
    return neighbours(*[(i % classes, top - i * step) for i in range(NEIGHBOURS)])


def test_several_close_images_of_one_class_give_a_confident_match():
    result = judge(neighbours((7, 0.86), (7, 0.84), (7, 0.83), (7, 0.80), (3, 0.55), (4, 0.52), (5, 0.50)))

    assert result.match
    assert result.confidence > 0.9
    assert result.classes[0].class_id == 7


def test_unrelated_neighbours_scattered_over_classes_give_no_match():
    result = judge(scattered(top=0.45))

    assert not result.match
    assert result.confidence < 0.1


def test_several_close_images_beat_one_lucky_image():
    result = judge(neighbours((1, 0.80), (2, 0.79), (2, 0.785), (2, 0.78), (3, 0.5)))

    assert [c.class_id for c in result.classes[:2]] == [2, 1]
    assert result.classes[0].score > result.classes[1].score


def test_class_scores_are_shares_that_sum_to_one_best_first():
    result = judge(scattered(top=0.7))

    scores = [c.score for c in result.classes]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0)
    assert len({c.class_id for c in result.classes}) == len(result.classes)


def test_confidence_rises_with_similarity_when_nothing_else_changes():
    confidences = [judge(scattered(top=top)).confidence for top in np.linspace(0.2, 1.0, 17)]

    assert confidences == sorted(confidences)
    assert confidences[-1] > confidences[0]


def test_confidence_falls_when_other_classes_close_in():
    lonely = judge(neighbours((1, 0.75), (1, 0.74), (1, 0.73), (2, 0.50), (3, 0.49)))
    contested = judge(neighbours((1, 0.75), (1, 0.74), (1, 0.73), (2, 0.745), (3, 0.735)))

    assert contested.confidence < lonely.confidence


def logistic(centroid_similarity, share, tightness):
    """The documented confidence, worked out here from the fitted constants."""
    logit = WEIGHT_CENTROID * centroid_similarity + WEIGHT_SHARE * share + WEIGHT_TIGHTNESS * tightness + BIAS
    return 1 / (1 + np.exp(-logit))


def test_confidence_at_the_extremes_is_the_logistic_of_a_tied_vote():
    # Two classes tied at one similarity: each has half the vote, the closeness is that similarity, and
    # without class statistics the tightness is the typical one.
    for similarity in (-1.0, 0.0, 1.0):
        result = judge(neighbours((1, similarity), (2, similarity)))

        assert result.confidence == pytest.approx(logistic(similarity, 0.5, TYPICAL_TIGHTNESS), rel=1e-9)
        assert [c.score for c in result.classes] == [0.5, 0.5]
    assert judge(neighbours((1, 1.0), (2, 1.0))).confidence == pytest.approx(0.99864, abs=1e-5)
    assert judge(neighbours((1, -1.0), (2, -1.0))).confidence < 1e-10


def test_order_of_the_neighbour_list_does_not_matter():
    pairs = [(1, 0.6), (2, 0.82), (2, 0.8), (3, 0.7)]

    assert judge(neighbours(*pairs)) == judge(list(reversed(neighbours(*pairs))))


def test_empty_neighbour_list_is_no_match_with_zero_confidence():
    result = judge([])

    assert (result.match, result.confidence, result.classes) == (False, 0.0, [])


def test_a_single_neighbour_is_judged():
    result = judge(neighbours((5, 0.9)))

    assert result.classes[0].class_id == 5
    assert result.classes[0].score == pytest.approx(1.0)
    assert result.confidence == pytest.approx(logistic(0.9, 1.0, TYPICAL_TIGHTNESS), rel=1e-9)
    assert result.match


def test_a_confidence_from_the_match_threshold_is_a_match():
    assert state_of(MATCH_THRESHOLD) == MATCH
    assert state_of(1.0) == MATCH


def test_below_the_match_threshold_a_confidence_from_the_closest_cut_names_the_closest_class():
    assert state_of(MATCH_THRESHOLD - 0.001) == CLOSEST
    assert state_of(CLOSEST_CONFIDENCE) == CLOSEST
    assert state_of(CLOSEST_CONFIDENCE - 0.001) == NO_MATCH
    assert state_of(0.0) == NO_MATCH


def test_the_cut_can_be_moved_for_the_evaluation():
    assert state_of(0.3, closest_confidence=0.31) == NO_MATCH
    assert state_of(0.3, closest_confidence=0.29) == CLOSEST


def test_distant_neighbours_that_agree_on_a_class_give_the_closest_class_not_a_match():
    # Four of five neighbours are of class 3, none close enough for a match.
    result = judge(neighbours((3, 0.58), (3, 0.57), (8, 0.56), (3, 0.55), (3, 0.54)))

    assert CLOSEST_CONFIDENCE <= result.confidence < MATCH_THRESHOLD
    assert result.classes[0].class_id == 3
    assert (result.state, result.match) == (CLOSEST, False)


def test_distant_neighbours_that_agree_on_nothing_give_no_match():
    result = judge(scattered(top=0.5))

    assert result.confidence < CLOSEST_CONFIDENCE
    assert (result.state, result.match) == (NO_MATCH, False)


def test_a_known_class_comes_first_with_its_own_share_and_full_confidence():
    judged = judge(neighbours((1, 0.5), (1, 0.49), (2, 0.48), (3, 0.3)))

    answer = known(judged, 2)

    assert (answer.state, answer.confidence, answer.match) == (CATALOG, 1.0, True)
    assert [c.class_id for c in answer.classes] == [2, 1, 3]
    assert answer.classes[0].score == next(c.score for c in judged.classes if c.class_id == 2)


def test_a_known_class_none_of_the_neighbours_is_of_comes_first_with_no_share():
    answer = known(judge(neighbours((1, 0.5), (3, 0.3))), 7)

    assert [(c.class_id, c.score) for c in answer.classes][0] == (7, 0.0)
    assert [c.class_id for c in answer.classes[1:]] == [1, 3]


def unit(vector):
    vector = np.asarray(vector, dtype=float)
    return vector / np.linalg.norm(vector)


def test_tightness_is_how_close_a_class_s_images_come_to_their_closest_classmates():
    angles = np.radians([0, 10, 20, 30, 40])
    vectors = np.column_stack([np.cos(angles), np.sin(angles)])

    stats = class_stats(vectors)

    # The two ends have their 3 closest classmates at 10, 20, 30 degrees; the others at 10, 10, 20.
    expected = (2 * np.cos(np.radians([10, 20, 30])).mean() + 3 * np.cos(np.radians([10, 10, 20])).mean()) / 5
    assert stats.count == 5
    assert stats.tightness == pytest.approx(expected)
    assert stats.centroid == pytest.approx(unit(vectors.mean(axis=0)))


def test_a_class_of_one_image_has_no_tightness_and_that_image_for_centroid():
    stats = class_stats([[0.6, 0.8]])

    assert (stats.count, stats.tightness) == (1, None)
    assert stats.centroid == pytest.approx([0.6, 0.8])


def test_the_same_closeness_matches_a_loose_class_but_not_a_tight_one():
    """A per-class threshold: a query must come as close to a class as its images come to each other."""
    query = unit([1.0, 0.0])
    centroid = unit([0.6, 0.8])
    near_list = neighbours((1, 0.62), (1, 0.60), (1, 0.59), (2, 0.35), (3, 0.34))
    loose = {1: ClassStats(count=10, tightness=0.45, centroid=centroid)}
    tight = {1: ClassStats(count=10, tightness=0.9, centroid=centroid)}

    assert judge(near_list, query, loose.get).match
    assert not judge(near_list, query, tight.get).match
    assert judge(near_list, query, tight.get).confidence < judge(near_list, query, loose.get).confidence


def test_only_the_best_class_s_statistics_are_asked_for():
    asked = []

    def stats_of(class_id):
        asked.append(class_id)
        return None

    judge(neighbours((4, 0.8), (4, 0.79), (5, 0.78), (6, 0.7)), unit([1.0, 0.0]), stats_of)

    assert asked == [4]


def test_confidence_rises_as_the_query_nears_the_class_centroid():
    near_list = neighbours((1, 0.8), (1, 0.78), (2, 0.6))
    confidences = []
    for cosine in np.linspace(0.3, 0.95, 8):
        stats = {1: ClassStats(count=5, tightness=0.7, centroid=unit([cosine, np.sqrt(1 - cosine**2)]))}
        confidences.append(judge(near_list, unit([1.0, 0.0]), stats.get).confidence)

    assert confidences == sorted(confidences)
    assert confidences[-1] > confidences[0]


def auroc(scores, positive):
    """Share of (positive, negative) pairs in which the positive scores higher (a tie counts half)."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    above = scores[positive][:, None] - scores[~positive][None, :]
    return float(np.mean((above > 0) + 0.5 * (above == 0)))


@pytest.fixture
def real_photos(caltech):
    """12 photos of each of 10 Caltech classes, embedded by the project's model: (vectors, class index)."""
    from catalog.embedding import get_embedder
    from catalog.imagefile import open_image

    files = [(path, path.parent.name) for path in sorted(caltech.glob("*/*.jpg"))]
    # Every fifth class from the second on: includes garfield and snoopy, two cartoon classes easily confused.
    classes = sorted({name for _, name in files})[1::5]
    chosen = [(path, classes.index(name)) for path, name in files if name in classes]
    chosen = [pair for c in range(len(classes)) for pair in [p for p in chosen if p[1] == c][:12]]
    vectors = get_embedder().embed([open_image(path.read_bytes()) for path, _ in chosen])
    return vectors, np.array([c for _, c in chosen])


@pytest.mark.slow
def test_real_photos_of_absent_classes_get_lower_confidence_than_photos_of_catalog_classes(real_photos):
    vectors, classes = real_photos
    absent = np.isin(classes, [0, 3, 6, 9])
    first_half = np.concatenate([np.arange(12) < 6] * 10)
    in_catalog = ~absent & first_half
    queries = np.flatnonzero(~in_catalog)
    catalog = np.flatnonzero(in_catalog)

    stats = {c: class_stats(vectors[catalog[classes[catalog] == c]]) for c in set(classes[catalog])}
    confidence, inside, match, right = [], [], [], []
    for q in queries:
        similarities = vectors[catalog] @ vectors[q]
        result = judge(
            [
                Neighbour(int(j), int(classes[j]), float(s))
                for j, s in zip(catalog, similarities, strict=True)
            ],
            vectors[q],
            stats.get,
        )
        confidence.append(result.confidence)
        inside.append(not absent[q])
        match.append(result.match)
        right.append(result.classes[0].class_id == classes[q])
    inside, match, right = np.array(inside), np.array(match), np.array(right)

    assert auroc(confidence, inside) >= 0.9
    assert np.mean(match == inside) >= 0.8
    assert np.mean(right[inside]) >= 0.9
