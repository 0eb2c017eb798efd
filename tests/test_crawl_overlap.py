"""The crawl's images step overlaps the network with the model and the storing (ingest.overlap): the next
image is claimed and its download under way while the one before is embedded, and a stop in the middle
leaves nothing claimed, half stored or stored twice."""

import time

import pytest

from catalog import store
from catalog.models import CatalogImage
from ingest import overlap
from ingest.models import ImageSource
from ingest.pipeline import run_classes, run_images
from tests.crawl_server import claim_lock_held, standard_scenario

pytestmark = pytest.mark.django_db

DEADLINE_SECONDS = 30  # a bound for a crawl that does not overlap, not a measurement


def wait_until(condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def planned(wiki):
    standard_scenario(wiki)
    ids, _ = run_classes(3)
    return ids


@pytest.mark.slow
def test_the_next_download_is_under_way_while_an_image_is_embedded(wiki, planned, monkeypatch):
    seen = []
    real_embed = store.embed

    def embed_once_the_next_download_started(candidates):
        if not seen:  # the first image: its model stage waits for the next image's download
            following = ImageSource.objects.to_fetch().values_list("id", flat=True)[1]
            seen.append((wait_until(lambda: len(wiki.requests_to("file")) >= 2), claim_lock_held(following)))
        return real_embed(candidates)

    monkeypatch.setattr(store, "embed", embed_once_the_next_download_started)
    recorder = run_images(planned, per_class=2, embed=True)

    assert seen == [(True, True)]  # the download went out, under the claim, while the model waited
    assert recorder.run.created == CatalogImage.objects.count() == 3
    assert not CatalogImage.objects.filter(embedding__isnull=True).exists()
    assert len(wiki.requests_to("file")) == 3  # each file downloaded once


def test_a_stop_while_images_are_downloaded_ahead_releases_their_claims(wiki, planned, monkeypatch):
    real_save = store.save
    claimed = []

    def save_then_stop(wikidata_class, candidate, vector):
        real_save(wikidata_class, candidate, vector)
        sources = ImageSource.objects.to_fetch().values_list("id", flat=True)
        claimed.extend(s for s in sources if claim_lock_held(s))
        raise KeyboardInterrupt  # Ctrl-C after the file and row are written, before the plan says so

    monkeypatch.setattr(store, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_images(planned, per_class=4)
    monkeypatch.undo()

    assert len(claimed) == overlap.AHEAD + 1  # the one stopped in, and those downloaded ahead of it
    assert not any(claim_lock_held(s) for s in claimed)
    run_images(planned, per_class=4)
    assert CatalogImage.objects.count() == 5  # Q571's own and 3 of its gallery, Q42's: none twice
    assert not ImageSource.objects.to_fetch().exists()
