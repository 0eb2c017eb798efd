"""A local stand-in for Wikidata, Wikipedia and Commons, for the crawler tests.

It answers in the real APIs' formats, mostly with payloads captured from them (../shared/fixtures/wikimedia):
entities, article wikitext, Commons imageinfo with extmetadata. Tests can queue faults (429 with
Retry-After, 5xx, maxlag, a slow answer, a body cut short) in front of any route, and read the request log.
"""

import copy
import io
import json
import re
import time
from collections import defaultdict
from urllib.parse import quote, unquote

from PIL import Image
from werkzeug.wrappers import Response

from catalog import http

SPARQL_JSON = "application/sparql-results+json"


def load_entity(path):
    """A bare entity from a fixture file holding either one entity or a wbgetentities answer."""
    document = json.loads(path.read_text())
    if "entities" in document:
        return next(iter(document["entities"].values()))
    return document


def picture_bytes(seed, size=(96, 72)):
    """A distinct, decodable JPEG per seed (the crawler only needs real image bytes)."""
    image = Image.new("RGB", size)
    pixels = [
        ((seed * 37 + x * 5) % 256, (seed * 91 + y * 7) % 256, (x * y + seed) % 256)
        for y in range(size[1])
        for x in range(size[0])
    ]
    image.putdata(pixels)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def sparql_document(variables, rows):
    """A SELECT answer in application/sparql-results+json, as the Wikidata Query Service writes it."""
    bindings = []
    for row in rows:
        binding = {}
        for name, value in row.items():
            if value is None:
                continue
            if isinstance(value, str) and value.startswith("http"):
                binding[name] = {"type": "uri", "value": value}
            elif isinstance(value, int):
                binding[name] = {
                    "datatype": "http://www.w3.org/2001/XMLSchema#integer",
                    "type": "literal",
                    "value": str(value),
                }
            else:
                binding[name] = {"xml:lang": "en", "type": "literal", "value": value}
        bindings.append(binding)
    return {"head": {"vars": variables}, "results": {"bindings": bindings}}


class FakeWikimedia:
    def __init__(self, httpserver, fixtures):
        self.server = httpserver
        self.fixtures = fixtures
        self.entities = {}
        self.classes = []  # rows for the top-classes query: dicts of item, itemLabel, ...
        self.instances = {}  # class qid -> [instance qids]
        self.articles = {}  # title -> action=parse document
        self.nonfree = set()
        self.missing_files = set()
        self.file_bytes = {}  # file name -> bytes (default: a picture per name)
        self.faults = defaultdict(list)  # route -> [callable returning a Response]
        self.log = []  # (route, params dict, headers dict)
        self.imageinfo = json.loads((fixtures / "wptools" / "imageinfo.json").read_text())
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # --- set-up helpers ---

    def url(self, path):
        return self.server.url_for(path)

    def configure(self, settings):
        settings.REVIMG_WIKIDATA_SPARQL_URL = self.url("/sparql")
        settings.REVIMG_WIKIDATA_API_URL = self.url("/wikidata/api.php")
        settings.REVIMG_WIKIPEDIA_API_URL = self.url("/wikipedia/api.php")
        settings.REVIMG_COMMONS_API_URL = self.url("/commons/api.php")
        settings.REVIMG_REDIS_URL = ""
        settings.REVIMG_HTTP_MIN_INTERVAL = 0
        settings.REVIMG_HTTP_BACKOFF = 0.01
        settings.REVIMG_HTTP_MAX_WAIT = 1.0
        settings.REVIMG_HTTP_RETRIES = 3
        settings.REVIMG_HTTP_READ_TIMEOUT = 5

    def add_entity(self, path, **changes):
        entity = load_entity(self.fixtures / path)
        entity.update(changes)
        self.entities[entity.get("id") or changes["id"]] = entity
        return entity

    def add_class(self, qid, label, instances, image=None, article=None, description=""):
        self.classes.append(
            {
                "item": f"http://www.wikidata.org/entity/{qid}",
                "itemLabel": label,
                "itemDescription": description,
                "article": article and "https://en.wikipedia.org/wiki/" + quote(article.replace(" ", "_")),
                "image": image and "http://commons.wikimedia.org/wiki/Special:FilePath/" + quote(image),
                "instances": instances,
            }
        )

    def add_article(self, path):
        document = json.loads((self.fixtures / path).read_text())
        self.articles[document["parse"]["title"]] = document

    def fault(self, route, response_factory, times=1):
        self.faults[route].extend([response_factory] * times)

    def requests_to(self, route):
        return [params for r, params, _ in self.log if r == route]

    # --- the server ---

    def handle(self, request):
        route = self.route(request.path)
        params = request.args.to_dict()
        self.log.append((route, params, dict(request.headers)))
        if self.faults[route]:
            return self.faults[route].pop(0)()
        return getattr(self, "answer_" + route)(request, params)

    @staticmethod
    def route(path):
        if path.startswith("/files/"):
            return "file"
        return path.strip("/").split("/")[0]

    def answer_sparql(self, request, params):
        query = params.get("query", "")
        instance_of = re.search(r"wdt:P31 wd:(Q\d+)", query)
        if instance_of:
            qids = self.instances.get(instance_of.group(1), [])
            rows = [
                {"item": f"http://www.wikidata.org/entity/{q}", "links": 100 - i} for i, q in enumerate(qids)
            ]
            return self.json(sparql_document(["item", "links"], rows), SPARQL_JSON)
        limit = int(re.search(r"LIMIT (\d+)", query).group(1))
        offset = int(re.search(r"OFFSET (\d+)", query).group(1))
        variables = ["item", "itemLabel", "itemDescription", "article", "image", "instances"]
        return self.json(sparql_document(variables, self.classes[offset : offset + limit]), SPARQL_JSON)

    def answer_wikidata(self, request, params):
        entities = {}
        for qid in params.get("ids", "").split("|"):
            entities[qid] = copy.deepcopy(self.entities.get(qid, {"id": qid, "missing": ""}))
        return self.json({"entities": entities, "success": 1})

    def answer_wikipedia(self, request, params):
        document = self.articles.get(params.get("page"))
        if document is None:
            return self.json(
                {"error": {"code": "missingtitle", "info": "The page you specified doesn't exist."}}
            )
        return self.json(document)

    def answer_commons(self, request, params):
        name = params["titles"].split(":", 1)[1]
        if name in self.missing_files:
            return self.json({"query": {"pages": [{"ns": 6, "title": "File:" + name, "missing": True}]}})
        document = copy.deepcopy(self.imageinfo)
        page = document["query"]["pages"][0]
        page["title"] = "File:" + name
        info = page["imageinfo"][0]
        info["url"] = self.url("/files/" + quote(name.replace(" ", "_")))
        info["descriptionurl"] = "https://commons.wikimedia.org/wiki/File:" + quote(name.replace(" ", "_"))
        if name in self.nonfree:
            info["extmetadata"]["NonFree"] = {"value": "true", "source": "commons-desc-page"}
        return self.json(document)

    def answer_file(self, request, params):
        name = unquote(request.path[len("/files/") :]).replace("_", " ")
        data = self.file_bytes.get(name) or picture_bytes(sum(name.encode()))
        return Response(data, content_type="image/jpeg")

    @staticmethod
    def json(document, content_type="application/json"):
        return Response(json.dumps(document), content_type=content_type)


# --- faults ---


def too_many_requests(retry_after="1"):
    return lambda: Response("slow down", status=429, headers={"Retry-After": retry_after})


def server_error(status=503):
    return lambda: Response("upstream trouble", status=status)


def maxlag_error(retry_after="1"):
    body = {"error": {"code": "maxlag", "info": "Waiting for 10.64.48.35: 6 seconds lagged.", "lag": 6}}
    return lambda: Response(
        json.dumps(body), content_type="application/json", headers={"Retry-After": retry_after}
    )


def slow_answer(seconds, body=b"{}"):
    def respond():
        time.sleep(seconds)
        return Response(body, content_type="application/json")

    return respond


def cut_short(data):
    """A response announcing more bytes than it sends, as when a connection drops mid-body."""

    def respond():
        response = Response(data[: len(data) // 2], content_type="image/jpeg")
        response.headers["Content-Length"] = str(len(data))
        return response

    return respond


# --- the scenario most crawler tests share ---

ADMONT = "Austria - Admont Abbey Library - 1407.jpg"  # book's own P18 (Q571)
ADAMS = "Douglas adams portrait cropped.jpg"  # the infobox image of the article "Douglas Adams"
GALLERY = [
    "Sparrenburg innovative sights.JPG",
    "Gujo Gifu Japan.jpg",
    "Verla.JPG",
    "Neihu during 2015 winter solstice.jpg",
]


def standard_scenario(wiki):
    """Three classes as the top-classes query returns them:
    - Q571 "book": its own P18, and instances with images for a gallery (Q2112, Q42, Q646148 with no
      image, Q857243, Q217447, Q271094);
    - Q42, standing in for a class whose only P18 statement is deprecated: its image must come from its
      English Wikipedia article ("Douglas Adams", real wikitext);
    - Q10908976: deleted on Wikidata (a real "missing" answer).
    """
    wiki.add_entity("wikibase-sdk/Q571.json")
    adams = wiki.add_entity("wptools/wikidata.json")
    for statement in adams["claims"]["P18"]:
        statement["rank"] = "deprecated"
    for path in ("wikibase-sdk/Q2112.json", "wikibase-sdk/Q646148.json", "wikibase-sdk/Q217447.json"):
        wiki.add_entity(path)
    wiki.add_entity("wikibase-sdk/Q271094.json")
    wiki.add_entity("wptools/wikidata_images.json", id="Q857243")
    wiki.add_class(
        "Q571", "book", 1000, image=ADMONT, article="Book", description="medium for recording information"
    )
    wiki.add_class("Q42", "Douglas Adams", 500, article="Douglas Adams")
    wiki.add_class("Q10908976", "deleted item", 10)
    wiki.instances["Q571"] = ["Q2112", "Q42", "Q646148", "Q857243", "Q217447", "Q271094"]
    wiki.add_article("wptools/parse.json")
    return wiki


def fake_wikimedia(httpserver, wikimedia_fixtures, settings):
    """For a test module's `wiki` fixture: the stand-in Wikimedia, every base URL pointed at it, the
    client made quick (`yield from fake_wikimedia(...)`)."""
    fake = FakeWikimedia(httpserver, wikimedia_fixtures)
    fake.configure(settings)
    http.reset_session()
    yield fake
    http.reset_session()
