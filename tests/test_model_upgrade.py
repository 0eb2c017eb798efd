"""A catalog embedded by an earlier model version is upgraded by embed_images, and search answers
throughout: the rows a batch has not reached yet keep their old vectors and stay searchable."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image, ImageOps

from catalog import store
from catalog.embedding import MODEL_VERSION, get_embedder
from catalog.imagefile import open_image
from catalog.models import CatalogImage, WikidataClass
from ingest.pipeline import run_embeddings
from search.service import search_image

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # the real image model

# What the rows say made their vectors: average pooling, before GeM (catalog.embedding.MODEL_VERSION).
EARLIER_VERSION = "imagenet-57934424/v1"
CLASSES = ("dalmatian", "airplanes")


def mirrored(data):
    """Vectors unlike the current model's for the same file: those of the mirror image."""
    return get_embedder().embed([ImageOps.mirror(open_image(data))])[0]


@pytest.fixture
def earlier_catalog(caltech):
    """Four photos of each of two classes, stored with vectors the current model did not make."""
    for name in CLASSES:
        wikidata_class = WikidataClass.objects.create(label=name)
        for path in sorted((caltech / name).glob("*.jpg"))[:4]:
            data = path.read_bytes()
            store.save(wikidata_class, store.prepare(data, origin=CatalogImage.Origin.LOCAL), mirrored(data))
    CatalogImage.objects.update(embedding_version=EARLIER_VERSION)
    return caltech


def query(caltech, name):
    """A photo of the class that is not in the catalog."""
    return open_image(sorted((caltech / name).glob("*.jpg"))[10].read_bytes())


def test_embed_images_replaces_every_earlier_vector_with_the_current_models(earlier_catalog):
    out = io.StringIO()
    call_command("embed_images", "--no-progress", stdout=out)

    images = list(CatalogImage.objects.order_by("id"))
    assert len(images) == 8
    assert {image.embedding_version for image in images} == {MODEL_VERSION} != {EARLIER_VERSION}
    assert not CatalogImage.objects.stale().exists()
    now = get_embedder().embed([Image.open(image.file.open("rb")) for image in images])
    assert np.abs(np.array([image.embedding for image in images]) - now).max() < 1e-5
    assert "8" in out.getvalue()


def test_search_answers_between_every_batch_of_the_upgrade(earlier_catalog):
    dalmatian, airplane = (query(earlier_catalog, name) for name in CLASSES)
    answers = []

    def search_after_each_batch(steps, label=None):
        for step in steps:
            yield step  # the batch is embedded and saved before the loop asks for the next one
            stale = CatalogImage.objects.stale().count()
            answers.append((stale, search_image(dalmatian), search_image(airplane)))

    run_embeddings(batch_size=1, progress=search_after_each_batch)

    assert [stale for stale, _, _ in answers] == list(range(7, -1, -1))
    for _, for_dalmatian, for_airplane in answers:
        assert len(for_dalmatian.results) == len(for_airplane.results) == 8
        assert for_dalmatian.classes[0].wikidata_class.label == "dalmatian"
        assert for_airplane.classes[0].wikidata_class.label == "airplanes"
