"""JSON shapes of the API: search answers, catalog classes and images, errors."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import CatalogImage, WikidataClass

from .inputs import BOX_FORMAT, BOX_PATTERN
from .service import DEFAULT_K, MAX_K
from .verdict import STATES


def absolute(request, url):
    return request.build_absolute_uri(url) if request is not None else url


class ClassRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = WikidataClass
        fields = ["id", "qid", "label"]


class ImageLinksMixin:
    """image_url, thumbnail_url and the credit fields of a CatalogImage; blank text reads as null."""

    def image_of(self, obj):
        return obj

    @extend_schema_field(serializers.URLField())
    def get_image_url(self, obj):
        image = self.image_of(obj)
        return absolute(self.context.get("request"), image.file.url)

    @extend_schema_field(serializers.URLField())
    def get_thumbnail_url(self, obj):
        image = self.image_of(obj)
        # Every stored image has a thumbnail; an older row without one shows the full picture.
        return absolute(self.context.get("request"), (image.thumbnail or image.file).url)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_source_url(self, obj):
        return self.image_of(obj).source_link

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_license_url(self, obj):
        return self.image_of(obj).license_link

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_license(self, obj):
        return self.image_of(obj).license or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_attribution(self, obj):
        image = self.image_of(obj)
        return image.attribution or image.artist or None


class ImageHitSerializer(ImageLinksMixin, serializers.Serializer):
    """One search result: a catalog image and how similar it is to the query (1 - cosine distance)."""

    id = serializers.IntegerField(source="image.pk")
    similarity = serializers.FloatField()
    wikidata_class = ClassRefSerializer(source="image.wikidata_class")
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    source_url = serializers.SerializerMethodField()
    license = serializers.SerializerMethodField()
    attribution = serializers.SerializerMethodField()

    def get_fields(self):
        # "class" is the public name; it cannot be a Python attribute name.
        return {
            ("class" if name == "wikidata_class" else name): f for name, f in super().get_fields().items()
        }

    def image_of(self, hit):
        return hit.image


class ClassHitSerializer(serializers.Serializer):
    """A class of the answer and its share of the evidence (scores of all classes sum to at most 1)."""

    id = serializers.IntegerField(source="wikidata_class.pk")
    qid = serializers.CharField(source="wikidata_class.qid", allow_null=True)
    label = serializers.CharField(source="wikidata_class.label")
    score = serializers.FloatField()


class SearchResultSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The image model (name/version) that made the vectors")
    state = serializers.ChoiceField(choices=list(STATES.items()), help_text="The answer in one word")
    match = serializers.BooleanField(
        help_text="Whether anything in the catalog really looks like the query (state `match` or `catalog`)"
    )
    confidence = serializers.FloatField(
        help_text="0..1: how likely the first class is right; 1 for `catalog`, whose class is known"
    )
    took_ms = serializers.FloatField(help_text="Time spent searching, from decoded picture to answer")
    classes = ClassHitSerializer(
        many=True,
        help_text="Best first; for `catalog`, the picture's own class first, scored by its neighbours' vote",
    )
    results = ImageHitSerializer(many=True)


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file sent in the request: binary in the schema (drf-spectacular writes a FileField as a URL, which
    is what it is in answers)."""


def box_field():
    return serializers.RegexField(
        BOX_PATTERN, required=False, help_text=f"Search only this part of the picture: {BOX_FORMAT}"
    )


class SearchUploadSerializer(serializers.Serializer):
    """For the schema only: the view reads the request itself so that every refusal has one shape."""

    image = UploadField(required=False, help_text="The picture; or give url instead")
    url = serializers.URLField(required=False, help_text="http(s) address of a picture on the public web")
    k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_K, default=DEFAULT_K)
    box = box_field()


class SearchUrlSerializer(serializers.Serializer):
    """For the schema only: a JSON body names the picture by its address (a file needs multipart)."""

    url = serializers.URLField(help_text="http(s) address of a picture on the public web")
    k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_K, default=DEFAULT_K)
    box = box_field()


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class ClassSerializer(serializers.ModelSerializer):
    wikidata_url = serializers.URLField(read_only=True, allow_null=True)
    wikipedia_url = serializers.URLField(read_only=True, allow_null=True)
    image_count = serializers.IntegerField(read_only=True, help_text="Searchable images of this class")

    class Meta:
        model = WikidataClass
        fields = ["id", "qid", "label", "description", "wikidata_url", "wikipedia_url", "image_count"]


class ImageSerializer(ImageLinksMixin, serializers.ModelSerializer):
    wikidata_class = ClassRefSerializer(source="wikidata_class", read_only=True)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    source_url = serializers.SerializerMethodField()
    license = serializers.SerializerMethodField()
    license_url = serializers.SerializerMethodField()
    attribution = serializers.SerializerMethodField()

    class Meta:
        model = CatalogImage
        fields = [
            "id",
            "wikidata_class",
            "image_url",
            "thumbnail_url",
            "width",
            "height",
            "source_url",
            "license",
            "license_url",
            "artist",
            "attribution",
        ]

    def get_fields(self):
        return {
            ("class" if name == "wikidata_class" else name): f for name, f in super().get_fields().items()
        }
