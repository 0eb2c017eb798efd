"""The one thing search keeps: an uploaded picture's query, for a while, so its answer has an address."""

from django.db import models
from django.utils import timezone
from pgvector.django import VectorField

from catalog.embedding import EMBEDDING_DIM


class SharedQueryQuerySet(models.QuerySet):
    def live(self, now=None):
        return self.filter(expires_at__gt=now or timezone.now())

    def expired(self, now=None):
        return self.filter(expires_at__lte=now or timezone.now())


class SharedQuery(models.Model):
    """An upload's query behind an unguessable token (search.shared): never listed, gone after
    REVIMG_SHARED_QUERY_HOURS.

    The pictures are kept in the row, not in the media storage: media files are public at a stable
    address and cached for a year, which an unlisted link must never be; deleting the row deletes them.
    """

    token = models.CharField(max_length=64, unique=True)
    # The decoded query (search.inputs.decode_query) as a JPEG, so a part of it can be searched later.
    picture = models.BinaryField()
    thumbnail = models.BinaryField()  # what the answer shows, made once
    embedding = VectorField(dimensions=EMBEDDING_DIM)
    model = models.CharField(max_length=100, help_text="The image model (name/version) that made embedding")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    objects = SharedQueryQuerySet.as_manager()

    class Meta:
        indexes = [
            # The hourly cleanup deletes by it (SharedQuery.objects.expired()).
            models.Index(fields=["expires_at"], name="sharedquery_expires_idx"),
        ]

    def __str__(self):
        # Never the token: whoever reads a log line or a shell must not be handed the link.
        return f"shared query #{self.pk} until {self.expires_at:%Y-%m-%d %H:%M}"
