"""The crawl's images step overlaps the network, the storing and the model (ingest.overlap): downloads go on
while the model works, the images downloaded ahead are claimed first, a stop in the middle leaves nothing
claimed or stored twice, and a file planned for two classes is downloaded once."""

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
def test_downloads_and_storing_go_on_while_the_model_works(wiki, planned, monkeypatch):
    waited = []
    real_embed = store.embed

    def embed_once_every_file_is_downloaded(candidates):
        if not waited:  # the model's first batch waits until the last file is downloaded
            waited.append(wait_until(lambda: len(wiki.requests_to("file")) == 5))
        return real_embed(candidates)

    monkeypatch.setattr(store, "embed", embed_once_every_file_is_downloaded)
    recorder = run_images(planned, per_class=4, embed=True)

    # More images than are downloaded ahead: downloading went on past them, and storing with it.
    assert waited == [True]
    assert recorder.run.created == CatalogImage.objects.count() == 5
    assert not CatalogImage.objects.filter(embedding__isnull=True).exists()  # each embedded, once stored
    assert len(wiki.requests_to("file")) == 5  # each file downloaded once


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


def test_a_file_planned_for_two_classes_is_downloaded_once_though_downloads_run_ahead(wiki):
    for qid, label in (("Q3947", "house"), ("Q41176", "building")):
        wiki.add_gallery_class(qid, label, "Casa Batllo.jpg", [])
    ids, _ = run_classes(2)

    recorder = run_images(ids, per_class=1)

    assert (recorder.run.created, recorder.run.skipped) == (1, 1)
    assert CatalogImage.objects.count() == 1
    assert len(wiki.requests_to("commons")) == len(wiki.requests_to("file")) == 1
