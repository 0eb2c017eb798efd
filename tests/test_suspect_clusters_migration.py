"""Migration 0009 turns duplicate pairs into clusters: open pairs go (the next search finds them again as
clusters), a curator's dismissed pairs stay dismissed as clusters of their pictures."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import Suspect
from tests.catalog_factories import make_catalog

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("catalog", "0008_wikidataclass_wikidata_revision")]
AFTER = [("catalog", "0009_suspect_clusters")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_dismissed_pairs_become_dismissed_clusters_and_open_pairs_are_dropped():
    images = [i.pk for i in make_catalog(classes=1, per_class=6).popitem()[1]]
    old = migrate(BEFORE).get_model("catalog", "Suspect")
    dismissed = "2026-01-01T00:00Z"
    old.objects.create(
        kind="duplicate", image_id=images[0], other_id=images[1], score=0.9, dismissed_at=dismissed
    )
    old.objects.create(
        kind="duplicate", image_id=images[0], other_id=images[2], score=0.8, dismissed_at=dismissed
    )
    old.objects.create(kind="duplicate", image_id=images[3], other_id=images[4], score=0.7)
    outlier = old.objects.create(kind="outlier", image_id=images[5], score=0.5, reason="robust z 6.5")

    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # back to today's schema

    (cluster,) = Suspect.objects.filter(kind=Suspect.Kind.DUPLICATE)
    assert cluster.dismissed_at is not None and cluster.image_id == images[0]
    assert set(cluster.members.values_list("pk", flat=True)) == {images[0], images[1], images[2]}
    assert list(Suspect.objects.get(pk=outlier.pk).members.values_list("pk", flat=True)) == [images[5]]
