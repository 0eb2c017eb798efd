"""Duplicates become clusters of copies (Suspect.members) instead of pairs (Suspect.other).

Open pair rows are dropped: the next suspect search (manage.py find_suspects, the upkeep job or the
admin's button) finds them again as clusters. A curator's dismissed pairs are kept, as clusters of the two
pictures, merged when they share their first picture, so "not a duplicate" still holds after the change.
"""

from collections import defaultdict

from django.db import migrations, models


def pairs_to_clusters(apps, schema_editor):
    Suspect = apps.get_model("catalog", "Suspect")
    Suspect.objects.filter(kind="duplicate", dismissed_at__isnull=True).delete()
    members = defaultdict(set)  # suspect id -> its pictures' ids
    for outlier in Suspect.objects.filter(kind="outlier"):
        members[outlier.pk].add(outlier.image_id)
    kept = {}  # first picture -> the suspect that stands for its dismissed pairs
    for pair in Suspect.objects.filter(kind="duplicate").order_by("id"):
        cluster = kept.setdefault(pair.image_id, pair.pk)
        members[cluster] |= {pair.image_id, pair.other_id}
        if cluster != pair.pk:
            pair.delete()
    Suspect.members.through.objects.bulk_create(
        Suspect.members.through(suspect_id=pk, catalogimage_id=image_id)
        for pk, ids in members.items()
        for image_id in ids
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0008_wikidataclass_wikidata_revision"),
    ]

    operations = [
        migrations.CreateModel(
            name="SuspectSearch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("finished_at", models.DateTimeField(auto_now_add=True)),
                ("summary", models.TextField()),
            ],
            options={
                "ordering": ["-finished_at"],
                "get_latest_by": "finished_at",
            },
        ),
        migrations.AddField(
            model_name="suspect",
            name="members",
            field=models.ManyToManyField(related_name="+", to="catalog.catalogimage"),
        ),
        migrations.RunPython(pairs_to_clusters, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="suspect",
            name="suspect_one_outlier",
        ),
        migrations.RemoveConstraint(
            model_name="suspect",
            name="suspect_one_pair",
        ),
        migrations.RemoveField(
            model_name="suspect",
            name="other",
        ),
        migrations.AddField(
            model_name="suspect",
            name="detail",
            field=models.TextField(blank=True, help_text="The measures behind the reason, for the curious"),
        ),
        migrations.AlterField(
            model_name="suspect",
            name="reason",
            field=models.TextField(blank=True, help_text="Why, in plain words"),
        ),
        migrations.AddConstraint(
            model_name="suspect",
            constraint=models.UniqueConstraint(fields=("kind", "image"), name="suspect_one_per_image"),
        ),
    ]
