#!/bin/sh
# The image's commands (compose.yaml names them): web, worker, beat, migrate. Any other command runs as
# given, e.g. `docker compose run --rm web python manage.py createsuperuser`. Arguments after the command
# name are passed on. Run from the app's folder: gunicorn reads gunicorn.conf.py there, and Celery finds
# the revimg package there.
set -eu

command="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$command" in
web)
	# Binds to $HOST (the image sets 0.0.0.0:8000); workers, timeouts and the model warm-up are
	# gunicorn.conf.py's.
	exec gunicorn revimg.wsgi "$@"
	;;
worker)
	exec celery -A revimg worker --loglevel="${REVIMG_LOG_LEVEL:-INFO}" "$@"
	;;
beat)
	# The schedule's state (when each entry last ran) is kept across restarts, so a daily task is not
	# postponed by every restart of beat.
	mkdir -p "$REVIMG_DATA_DIR/beat"
	exec celery -A revimg beat --loglevel="${REVIMG_LOG_LEVEL:-INFO}" \
		--schedule="$REVIMG_DATA_DIR/beat/schedule" "$@"
	;;
migrate)
	exec python manage.py migrate --no-input "$@"
	;;
*)
	exec "$command" "$@"
	;;
esac
