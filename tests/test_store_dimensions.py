"""Stored images record their width and height, so loading a row never opens its file to measure it."""

import pytest

from catalog.models import CatalogImage
from tests.catalog_factories import make_class, make_image, picture_bytes

pytestmark = pytest.mark.django_db


def test_a_stored_image_has_its_dimensions_in_the_row():
    image = make_image(make_class("thing"), seed=1, data=picture_bytes(1, size=(64, 48)))

    assert CatalogImage.objects.values_list("width", "height").get(pk=image.pk) == (64, 48)
