"""Searching a part of a picture: box=left,top,right,bottom as fractions of its width and height, parsed
once (search.inputs.parse_box) with clear refusals, cropped from the decoded picture before the model sees
it, on the page and in the API. Refusals here come before the model runs; searches that run it are in
tests/test_search_share_model.py."""

import io

import pytest
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from search.inputs import MIN_BOX_PIXELS, Box, QueryError, cropped, parse_box
from tests.catalog_factories import make_catalog

pytestmark = pytest.mark.django_db

QUARTERS = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 0)}


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


def quartered(width=200, height=100):
    """A picture in four plain quarters: red top left, green top right, blue bottom left, yellow."""
    image = Image.new("RGB", (width, height))
    for (column, row), colour in QUARTERS.items():
        image.paste(
            colour,
            (column * width // 2, row * height // 2, (column + 1) * width // 2, (row + 1) * height // 2),
        )
    return image


def png(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    out.seek(0)
    out.name = "picture.png"
    return out


def test_a_box_is_four_fractions_from_left_to_bottom():
    assert parse_box("0.1,0.2,0.6,0.9") == Box(0.1, 0.2, 0.6, 0.9)
    assert parse_box(" 0 , .25,1,1.0") == Box(0, 0.25, 1, 1)
    assert parse_box("0.123456,0,1,1").param == "0.1235,0,1,1"  # an address the page writes back


@pytest.mark.parametrize(
    ("box", "complaint"),
    [
        ("0.1,0.2,0.6", "four numbers"),
        ("0.1,0.2,0.6,0.9,1", "four numbers"),
        ("a,b,c,d", "four numbers"),
        ("-0.1,0,1,1", "four numbers"),  # no signs
        ("1e-1,0,1,1", "four numbers"),  # no exponents
        ("nan,0,1,1", "four numbers"),
        ("0,0,1,1.5", "between 0 and 1"),
        ("0,0,2,1", "between 0 and 1"),
        ("0.6,0,0.2,1", "left edge of box must be before its right"),
        ("0,0.5,1,0.5", "top above its bottom"),
        ("0,0,1,١", "four numbers"),  # an Arabic-Indic one: digits, but not ASCII ones
        (["0", "0", "1", "1"], "must be a string"),
    ],
)
def test_a_bad_box_is_refused_saying_what_a_box_is(box, complaint):
    with pytest.raises(QueryError) as refused:
        parse_box(box)

    assert refused.value.code == "invalid_box" and refused.value.status == 400
    assert complaint in refused.value.message and "left,top,right,bottom" in refused.value.message


@pytest.mark.parametrize(
    ("box", "quarter"),
    [("0,0,0.5,0.5", (0, 0)), ("0.5,0,1,0.5", (1, 0)), ("0,0.5,0.5,1", (0, 1)), ("0.5,0.5,1,1", (1, 1))],
)
def test_the_box_selects_exactly_its_pixels(box, quarter):
    part = cropped(quartered(), parse_box(box))

    assert part.size == (100, 50)
    assert part.getcolors() == [(100 * 50, QUARTERS[quarter])]


def test_a_box_across_the_middle_takes_a_share_of_each_side():
    part = cropped(quartered(), parse_box("0.25,0.2,0.75,0.6"))  # x 50..150, y 20..60

    assert part.size == (100, 40)
    assert sorted(part.getcolors()) == sorted(
        [
            (50 * 30, QUARTERS[0, 0]),
            (50 * 30, QUARTERS[1, 0]),
            (50 * 10, QUARTERS[0, 1]),
            (50 * 10, QUARTERS[1, 1]),
        ]
    )


def test_a_box_smaller_than_the_least_the_model_can_use_is_refused():
    picture = quartered(320, 320)
    just_enough = MIN_BOX_PIXELS / 320

    assert cropped(picture, Box(0, 0, just_enough, just_enough)).size == (MIN_BOX_PIXELS, MIN_BOX_PIXELS)
    with pytest.raises(QueryError) as refused:
        cropped(picture, Box(0, 0, just_enough, (MIN_BOX_PIXELS - 1) / 320))
    assert (
        refused.value.code == "invalid_box" and f"{MIN_BOX_PIXELS}x{MIN_BOX_PIXELS}" in refused.value.message
    )


def assert_invalid_box(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and error["code"] == "invalid_box" and error["message"]


@pytest.mark.parametrize("box", ["0,0,1", "", "0.5,0,0.4,1", "0,0,0.1,0.1"])
def test_the_api_refuses_a_bad_box_in_a_form_in_its_error_shape(box):
    # 0.1 of this 200x100 picture is 20x10 pixels: too small once decoded, before the model runs.
    response = APIClient().post("/api/search/", {"image": png(quartered()), "box": box}, format="multipart")

    assert_invalid_box(response)


@pytest.mark.parametrize("box", ["0,0,1", ["0", "0", "1", "1"], 7, None])
def test_the_api_refuses_a_bad_box_in_json_in_its_error_shape(box):
    response = APIClient().post(
        # An address refused without a lookup, were the box not checked first.
        "/api/search/",
        {"url": "http://127.0.0.1/a.jpg", "box": box},
        format="json",
    )

    assert_invalid_box(response)


def test_the_api_schema_describes_the_box():
    schema = APIClient().get("/api/schema/?format=json").json()

    bodies = schema["paths"]["/api/search/"]["post"]["requestBody"]["content"]
    for media_type in ("multipart/form-data", "application/json"):
        name = bodies[media_type]["schema"]["$ref"].rsplit("/", 1)[-1]
        box = schema["components"]["schemas"][name]["properties"]["box"]
        assert box["type"] == "string" and "left,top,right,bottom" in box["description"]
        assert parse_box("0.1,0.2,0.6,0.9") and box["pattern"]


def test_the_page_refuses_a_bad_box_before_searching():
    image = next(iter(make_catalog(classes=1, per_class=2).values()))[0]

    response = Client().get("/", {"similar": image.pk, "box": "0.9,0,0.1,1"})

    assert response.status_code == 400
    assert "The left edge of box must be before its right" in response.content.decode()


def test_a_part_of_a_catalog_picture_too_small_to_search_is_refused_on_the_page():
    image = next(iter(make_catalog(classes=1, per_class=2).values()))[0]  # 64x48 pixels

    response = Client().get("/", {"similar": image.pk, "box": "0,0,0.4,0.5"})

    assert response.status_code == 400 and "choose at least 32x32" in response.content.decode()
