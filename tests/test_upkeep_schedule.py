"""Beat's upkeep schedule (revimg.celery) comes from REVIMG_UPKEEP_*_HOURS: fractions allowed, 0 turns a
job off, a bad value stops `celery beat` at start-up; its schedule file lives in REVIMG_DATA_DIR."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from ingest import upkeep
from revimg.celery import app, upkeep_schedule
from revimg.env import env_float
from tests.celery_processes import beat_command

DEADLINE_SECONDS = 120  # a bound for a process that hangs, not a measurement
HOURS = {
    "suspects": "REVIMG_UPKEEP_SUSPECTS_HOURS",
    "class_stats": "REVIMG_UPKEEP_CLASS_STATS_HOURS",
    "reembed": "REVIMG_UPKEEP_REEMBED_HOURS",
    "recrawl": "REVIMG_UPKEEP_RECRAWL_HOURS",
    "sweep_media": "REVIMG_UPKEEP_SWEEP_HOURS",
}
PRINT_SCHEDULE = """
import json
from revimg.celery import app
print(json.dumps({
    "filename": app.conf.beat_schedule_filename,
    "schedule": {name: [e["task"], e["schedule"].total_seconds(), e["options"]["expires"]]
                 for name, e in app.conf.beat_schedule.items()},
}))
"""


def env_without_upkeep(data_dir, **values):
    env = {k: v for k, v in os.environ.items() if k not in HOURS.values()}
    return dict(env, DJANGO_SETTINGS_MODULE="revimg.settings", REVIMG_DATA_DIR=str(data_dir), **values)


def started_schedule(data_dir, **values):
    """What a freshly started process makes of these variables: its beat schedule and schedule file."""
    done = subprocess.run(
        [sys.executable, "-c", PRINT_SCHEDULE],
        env=env_without_upkeep(data_dir, **values),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_job_is_scheduled_by_default_at_its_own_interval(tmp_path):
    started = started_schedule(tmp_path)

    hours = {name: seconds / 3600 for name, (_, seconds, _) in started["schedule"].items()}
    assert hours == {
        "upkeep-suspects": 24,
        "upkeep-class_stats": 6,
        "upkeep-reembed": 24,
        "upkeep-recrawl": 168,
        "upkeep-sweep_media": 24,
        "search-delete_expired_shared": 1,  # search's own, not an upkeep job
    }
    assert started["filename"] == str(tmp_path.resolve() / "celerybeat-schedule")


def test_intervals_come_from_the_environment_in_hours_and_zero_turns_a_job_off(tmp_path):
    started = started_schedule(tmp_path, REVIMG_UPKEEP_SUSPECTS_HOURS="0", REVIMG_UPKEEP_SWEEP_HOURS="0.25")

    schedule = started["schedule"]
    assert "upkeep-suspects" not in schedule
    assert schedule["upkeep-sweep_media"] == ["ingest.upkeep_sweep_media", 900.0, 900.0]
    assert schedule["upkeep-recrawl"][1] == 168 * 3600


@pytest.mark.parametrize(("value", "complaint"), [("soon", "must be a number"), ("-1", "must be at least 0")])
def test_beat_refuses_to_start_with_a_bad_interval(tmp_path, value, complaint):
    done = subprocess.run(
        beat_command(),
        env=env_without_upkeep(tmp_path, REVIMG_UPKEEP_RECRAWL_HOURS=value),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )

    assert done.returncode != 0
    assert f"REVIMG_UPKEEP_RECRAWL_HOURS {complaint}" in done.stderr
    assert not list(tmp_path.glob("celerybeat-schedule*"))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_numbers_that_are_not_finite_are_refused(monkeypatch, value):
    monkeypatch.setenv("REVIMG_UPKEEP_SWEEP_HOURS", value)

    with pytest.raises(ImproperlyConfigured, match="must be a finite number"):
        env_float("REVIMG_UPKEEP_SWEEP_HOURS", 24, minimum=0)


def test_the_schedule_names_a_registered_task_for_every_job():
    app.loader.import_default_modules()

    schedule = upkeep_schedule(dict.fromkeys(upkeep.JOBS, 1))

    assert {entry["task"] for entry in schedule.values()} <= set(app.tasks)
    assert len(schedule) == len(upkeep.JOBS) == len(HOURS)
    assert schedule["upkeep-class_stats"]["schedule"] == timedelta(hours=1)


def test_a_job_at_zero_hours_is_left_out():
    assert upkeep_schedule({"suspects": 0, "reembed": 0.5}) == {
        "upkeep-reembed": {
            "task": "ingest.upkeep_reembed",
            "schedule": timedelta(minutes=30),
            "options": {"expires": 1800.0},
        }
    }
