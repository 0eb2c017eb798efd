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

from django.db import connections
from PIL import Image
from werkzeug.wrappers import Response

from ingest import crawl

SPARQL_JSON = "application/sparql-results+json"
# What wbgetentities answers of an entity with props=info: page information, no content.
INFO_KEYS = ("type", "id", "pageid", "ns", "title", "lastrevid", "modified")


def load_entity(path):
    """A bare entity from a fixture file holding either one entity or a wbgetentities answer."""
    document = json.loads(path.read_text())
    if "entities" in document:
        return next(iter(document["entities"].values()))
    return document


ENTITY = "http://www.wikidata.org/entity/"
FILEPATH = "http://commons.wikimedia.org/wiki/Special:FilePath/"
# What the query service has for an unknown value (somevalue): a blank node, skolemised.
UNKNOWN_VALUE = "http://www.wikidata.org/.well-known/genid/"


def truthy_values(entity, prop):
    """The values the query service has for wdt:prop (its truthy triples) of an entity from wbgetentities:
    those of the best-ranked statements (preferred, else normal; deprecated never), unknown values included,
    "no value" statements giving none. Commons files as the service writes them: FilePath URLs."""
    statements = (entity.get("claims") or {}).get(prop) or []
    best = [s for s in statements if s.get("rank") == "preferred"] or [
        s for s in statements if s.get("rank") == "normal"
    ]
    values = []
    for statement in best:
        snak = statement["mainsnak"]
        if snak["snaktype"] == "somevalue":
            values.append(UNKNOWN_VALUE + statement.get("id", "").replace("$", "-"))
        elif snak["snaktype"] == "value":
            values.append(FILEPATH + quote(snak["datavalue"]["value"]))
    return values


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


# The captured Commons answer (wptools/imageinfo.json) is File:Douglas adams portrait cropped.jpg's: served as
# it is for that file, and as a template for every other file, with that file's own title, URLs and metadata.
CAPTURED_FILE = "Douglas adams portrait cropped.jpg"
# Licence short name -> (licence URL, licence template, attribution required), as Commons writes them.
LICENCES = {
    "CC BY-SA 4.0": ("https://creativecommons.org/licenses/by-sa/4.0", "cc-by-sa-4.0", "true"),
    "CC BY-SA 3.0": ("https://creativecommons.org/licenses/by-sa/3.0", "cc-by-sa-3.0", "true"),
    "CC BY 2.0": ("https://creativecommons.org/licenses/by/2.0", "cc-by-2.0", "true"),
    "CC0": ("http://creativecommons.org/publicdomain/zero/1.0/deed.en", "cc-zero", "false"),
}


def file_metadata(name, licence):
    """What the stand-in says of a file other than the captured one: (extmetadata changes, and what the
    crawler should store from them: licence, licence URL, attribution required, artist, attribution)."""
    stem = name.rsplit(".", 1)[0]
    user = "Author_of_" + quote(stem.replace(" ", "_"))
    url, template, attribution_required = LICENCES[licence]
    changes = {
        "ObjectName": stem,
        "ImageDescription": f"<i>{stem}</i>",
        "Artist": f'<a href="//commons.wikimedia.org/wiki/User:{user}" title="User:{user}">Author of {stem}</a>',
        "Credit": f'<span class="int-own-work" lang="en">Own work</span> ({stem})',
        "LicenseShortName": licence,
        "UsageTerms": licence,
        "LicenseUrl": url,
        "License": template,
        "AttributionRequired": attribution_required,
    }
    stored = (licence, url, attribution_required == "true", f"Author of {stem}", f"Own work ({stem})")
    return changes, stored


class FakeWikimedia:
    """The stand-in, on one server for every route, or with hosts {route: server} on a server of their own
    (as each Wikimedia service has its own host, and the crawler its own pace per host)."""

    def __init__(self, httpserver, fixtures, hosts=None):
        self.server = httpserver
        self.hosts = dict(hosts or {})
        self.fixtures = fixtures
        self.entities = {}
        self.classes = []  # rows for the top-classes query: dicts of item, itemLabel, ...
        self.instances = {}  # class qid -> [instance qids]
        self.articles = {}  # title -> action=parse document
        self.nonfree = set()
        self.licences = {}  # file name -> a key of LICENCES (default: CC BY-SA 4.0)
        self.missing_files = set()  # not on Commons: imageinfo answers "missing"
        self.gone_files = set()  # on Commons, but the file server answers 404 (deleted since, or purged)
        self.file_bytes = {}  # file name -> bytes (default: a picture per name)
        self.faults = defaultdict(list)  # route -> [callable returning a Response]
        self.log = []  # (route, params dict, headers dict)
        self.imageinfo = json.loads((fixtures / "wptools" / "imageinfo.json").read_text())
        for server in [httpserver, *self.hosts.values()]:
            server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    # --- set-up helpers ---

    def url(self, path):
        return self.hosts.get(self.route(path), self.server).url_for(path)

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

    def add_picture_item(self, qid, picture, template="wikibase-sdk/Q2112.json"):
        """An item as wbgetentities answers it, captured (Bielefeld's by default) and renamed qid, whose one
        P18 statement names picture."""
        entity = load_entity(self.fixtures / template)
        statement = copy.deepcopy(entity["claims"]["P18"][0])
        statement["mainsnak"]["datavalue"]["value"] = picture
        statement["id"] = f"{qid}${statement['id'].split('$', 1)[1]}"
        entity.update(id=qid, title=qid, claims={**entity["claims"], "P18": [statement]})
        self.entities[qid] = entity
        return entity

    def add_gallery_class(self, qid, label, own, pictures, first_instance=900_000):
        """A class with its own P18 picture, and instances best known first, the n-th showing pictures[n]
        (a name may come twice: two instances sharing a file). Returns the instances' QIDs."""
        self.add_picture_item(qid, own, template="wikibase-sdk/Q571.json")
        self.add_class(qid, label, 1000 + len(self.classes), image=own)
        instances = [f"Q{first_instance + n}" for n in range(len(pictures))]
        for instance, picture in zip(instances, pictures, strict=True):
            self.add_picture_item(instance, picture)
        self.instances[qid] = instances
        return instances

    def fault(self, route, response_factory, times=1):
        self.faults[route].extend([response_factory] * times)

    def stored_metadata(self, name):
        """What the crawler should store from this stand-in's answer for a file other than CAPTURED_FILE:
        (licence, licence URL, attribution required, artist, attribution)."""
        return file_metadata(name, self.licences.get(name, "CC BY-SA 4.0"))[1]

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
            return self.json(self.gallery_answer(query, instance_of.group(1)), SPARQL_JSON)
        limit = int(re.search(r"LIMIT (\d+)", query).group(1))
        offset = int(re.search(r"OFFSET (\d+)", query).group(1))
        variables = ["item", "itemLabel", "itemDescription", "article", "image", "instances"]
        return self.json(sparql_document(variables, self.classes[offset : offset + limit]), SPARQL_JSON)

    def gallery_answer(self, query, qid):
        """The gallery query's answer: the class's instances that have a truthy P18 (wdt:P18 []), best known
        first, up to the outer LIMIT (the inner one samples the instances the service ranks); with the
        number of their truthy images and one of them, when the query projects those (?images, ?picture)."""
        limit = int(re.search(r"LIMIT (\d+)\s*$", query).group(1))
        projected = re.findall(r"(?:^|\s|AS )\?(\w+)", query.split("WHERE", 1)[0])
        rows = []
        for instance in self.instances.get(qid, []):
            images = truthy_values(self.entities.get(instance, {}), "P18")
            if images:
                # SAMPLE: any one of them; here the last, so that a crawler taking it for the first is seen.
                found = {"images": len(images), "picture": images[-1]}
                rows.append({"item": ENTITY + instance, "links": 100 - len(rows), **found})
        rows = [{name: row[name] for name in projected} for row in rows[:limit]]
        return sparql_document(projected, rows)

    def answer_wikidata(self, request, params):
        entities = {}
        for qid in params.get("ids", "").split("|"):
            entity = copy.deepcopy(self.entities.get(qid, {"id": qid, "missing": ""}))
            if params.get("props") == "info" and "missing" not in entity:
                entity = {key: entity[key] for key in INFO_KEYS if key in entity}
            entities[qid] = entity
        return self.json({"entities": entities, "success": 1})

    def edit(self, qid, **changes):
        """An edit of the item on Wikidata: changes applied and a new revision (lastrevid) given to it."""
        entity = self.entities[qid]
        entity.update(changes)
        entity["lastrevid"] = entity.get("lastrevid", 0) + 1
        return entity

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
        if name != CAPTURED_FILE:
            del info["descriptionshorturl"]  # names the captured file's page id
            changes, _ = file_metadata(name, self.licences.get(name, "CC BY-SA 4.0"))
            for key, value in changes.items():
                info["extmetadata"][key]["value"] = value
        if name in self.nonfree:
            info["extmetadata"]["NonFree"] = {"value": "true", "source": "commons-desc-page"}
        return self.json(document)

    def answer_file(self, request, params):
        name = unquote(request.path[len("/files/") :]).replace("_", " ")
        if name in self.gone_files:
            return Response(NOT_FOUND_PAGE, status=404, content_type="text/html; charset=utf-8")
        data = self.file_bytes.get(name) or picture_bytes(sum(name.encode()))
        return Response(data, content_type="image/jpeg")

    @staticmethod
    def json(document, content_type="application/json"):
        return Response(json.dumps(document), content_type=content_type)


# What a file server answers for a file it does not have: a page for people, not an image.
NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
)


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


# --- the scenario most crawler tests share, and what they check ---

ADMONT = "Austria - Admont Abbey Library - 1407.jpg"  # book's own P18 (Q571)
ADAMS = CAPTURED_FILE  # the infobox image of the article "Douglas Adams"
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
    # A licence of its own for every picture (Douglas Adams' is the captured CC BY-SA 2.0).
    wiki.licences.update(
        zip(
            [ADMONT, *GALLERY], ["CC BY-SA 3.0", "CC BY 2.0", "CC0", "CC BY-SA 4.0", "CC BY 2.0"], strict=True
        )
    )
    return wiki


def claim_lock_held(source_id):
    """Whether some database session holds the crawler's claim on this image source."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
            [crawl.CLAIM_LOCK_SPACE, source_id],
        )
        return cursor.fetchone()[0] > 0
