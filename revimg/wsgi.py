import os
import threading

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
application = get_wsgi_application()


def _warm_up_embedder():
    # Searches embed the query in this process: load the model and run it once now (TensorFlow traces
    # its graph on the first call), beside serving, rather than make the first person to search wait.
    from PIL import Image

    from catalog.embedding import get_embedder

    get_embedder().embed([Image.new("RGB", (224, 224))])


threading.Thread(target=_warm_up_embedder, name="warm-up-embedder", daemon=True).start()
