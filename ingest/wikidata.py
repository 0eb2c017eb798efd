"""Wikidata: the classes with the most instances (SPARQL), entities (wbgetentities), and their statements.

Statements are read the way Wikidata means them: preferred ones win over normal ones, deprecated ones never
count.
"""

from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings

from catalog.http import crawler as http

ENTITY_PREFIX = "http://www.wikidata.org/entity/"
FILEPATH_MARKER = "/Special:FilePath/"
ENTITIES_PER_REQUEST = 50  # wbgetentities' limit for ordinary clients
INSTANCES_SAMPLE = 2000  # instances with an image the gallery query ranks (INSTANCES_QUERY)

# The classes with the most instances, with what the catalog shows of them. The grouped count runs in a
# subquery so each page (LIMIT/OFFSET) only asks the label service for its own rows.
TOP_CLASSES_QUERY = """
SELECT ?item ?itemLabel ?itemDescription ?article ?image ?instances WHERE {{
  {{
    SELECT ?item (COUNT(?instance) AS ?instances) WHERE {{ ?instance wdt:P31 ?item }}
    GROUP BY ?item ORDER BY DESC(?instances) LIMIT {limit} OFFSET {offset}
  }}
  OPTIONAL {{ ?article schema:about ?item; schema:isPartOf <https://en.wikipedia.org/> }}
  OPTIONAL {{ ?item wdt:P18 ?image }}
  SERVICE wikibase:label {{ bd:serviceParam wikibase:language "en". }}
}}
"""

# Well-known instances of a class that have an image: the most linked-to (sitelinks) among a bounded
# sample, so a class with millions of instances (human) stays within the service's time limit. With each,
# how many images it has and one of them: wdt: gives the best statements' values (preferred over normal,
# never deprecated), as best_values reads them; the service does not keep the statements' order, so an
# instance with several is read from its entity (pictures).
INSTANCES_QUERY = """
SELECT ?item ?links (COUNT(?image) AS ?images) (SAMPLE(?image) AS ?picture) WHERE {{
  {{ SELECT ?item WHERE {{ ?item wdt:P31 wd:{qid}; wdt:P18 [] }} LIMIT {sample} }}
  ?item wikibase:sitelinks ?links; wdt:P18 ?image .
}}
GROUP BY ?item ?links
ORDER BY DESC(?links) LIMIT {limit}
"""


@dataclass
class ClassInfo:
    qid: str
    label: str
    description: str = ""
    enwiki_title: str = ""
    image: str = ""  # a Commons file name
    instances: int | None = None
    revision: int | None = None  # the item's lastrevid, when read from wbgetentities


def sparql(query):
    """Run a SELECT query; the bindings, each a dict of variable -> value string."""
    document = http.get_json(
        settings.REVIMG_WIKIDATA_SPARQL_URL,
        {"query": query, "format": "json"},
        mediawiki=False,
        headers={"Accept": "application/sparql-results+json"},
    )
    return [{k: v.get("value", "") for k, v in row.items()} for row in document["results"]["bindings"]]


def top_classes(limit, page_size=100):
    """Yield ClassInfo for up to limit classes, most instances first, asking page_size rows at a time."""
    seen = set()
    offset = 0
    while offset < limit:
        size = min(page_size, limit - offset)
        rows = sparql(TOP_CLASSES_QUERY.format(limit=size, offset=offset))
        for row in rows:
            info = class_from_row(row)
            if info and info.qid not in seen:  # OPTIONALs with several values repeat a class
                seen.add(info.qid)
                yield info
        if len(rows) < size:
            return
        offset += size


def class_from_row(row):
    qid = qid_from_uri(row.get("item", ""))
    if not qid:
        return None
    label = row.get("itemLabel") or qid
    instances = row.get("instances")
    return ClassInfo(
        qid=qid,
        label=label[:255],
        description=row.get("itemDescription", ""),
        enwiki_title=title_from_article_url(row.get("article", "")),
        image=file_from_filepath_url(row.get("image", "")),
        instances=int(instances) if instances and instances.isdigit() else None,
    )


@dataclass
class Instance:
    qid: str
    picture: str | None  # its P18 image's file name ("" if not a file); None: it has several, unread


def instances_with_images(qid, limit, sample=INSTANCES_SAMPLE):
    """Well-known instances of a class that have an image (P18), best known first, as Instances."""
    rows = sparql(INSTANCES_QUERY.format(qid=qid, limit=int(limit), sample=int(sample)))
    instances = []
    for row in rows:
        instance = qid_from_uri(row.get("item", ""))
        if instance:
            only = row.get("images") == "1"
            instances.append(
                Instance(instance, file_from_filepath_url(row.get("picture", "")) if only else None)
            )
    return instances


def pictures(instances):
    """{QID: picture file name, "" if none} of Instances, in their order: the first of best_values(P18), as
    for a class's own image. Those with several best-ranked images are read from their entities
    (wbgetentities), whose statements keep the item's order; the others cost no request."""
    several = [i.qid for i in instances if i.picture is None]
    entities = get_entities(several)  # no request when none
    found = {}
    for instance in instances:
        if instance.picture is None:
            images = best_values(entities.get(instance.qid) or {}, "P18")
            found[instance.qid] = images[0] if images else ""
        else:
            found[instance.qid] = instance.picture
    return found


def get_entities(qids):
    """{qid: entity} for the given ids, fetched 50 at a time; deleted or missing ids are left out."""
    entities = {}
    for key, entity in _wbgetentities(qids, "labels|descriptions|claims|sitelinks|info"):
        if "claims" in entity:
            entities[key] = entity
    return entities


def revisions(qids):
    """{qid: the item's current revision (lastrevid)}, asked 50 at a time with nothing but page info;
    deleted or missing ids are left out."""
    return {
        key: int(entity["lastrevid"])
        for key, entity in _wbgetentities(qids, "info")
        if str(entity.get("lastrevid", "")).isdigit()
    }


def _wbgetentities(qids, props):
    """(id asked for, entity) of every entity there, 50 ids a request; a redirected id answers with its
    target, under the id asked for and under the target's own."""
    qids = list(dict.fromkeys(qids))
    for start in range(0, len(qids), ENTITIES_PER_REQUEST):
        document = http.get_json(
            settings.REVIMG_WIKIDATA_API_URL,
            {
                "action": "wbgetentities",
                "ids": "|".join(qids[start : start + ENTITIES_PER_REQUEST]),
                "props": props,
                "languages": "en",
                "sitefilter": "enwiki",
                "redirects": "yes",
            },
        )
        for key, entity in (document.get("entities") or {}).items():
            if "missing" in entity:
                continue
            yield key, entity
            if key != entity.get("id", key):
                yield entity["id"], entity


def best_values(entity, prop):
    """The values of prop's best statements: preferred if any, else normal; never deprecated."""
    statements = (entity.get("claims") or {}).get(prop) or []
    if isinstance(statements, dict):  # formatversion=1 answers with an empty dict when there are none
        statements = list(statements.values())
    preferred = [s for s in statements if s.get("rank") == "preferred"]
    chosen = preferred or [s for s in statements if s.get("rank", "normal") == "normal"]
    values = []
    for statement in chosen:
        snak = statement.get("mainsnak") or {}
        if snak.get("snaktype", "value") != "value":
            continue  # novalue / somevalue
        value = (snak.get("datavalue") or {}).get("value")
        if isinstance(value, dict):
            value = value.get("id") or (f"Q{value['numeric-id']}" if "numeric-id" in value else None)
        if value:
            values.append(value)
    return values


def english(entity, field):
    value = (entity.get(field) or {}).get("en")
    if isinstance(value, dict):
        return value.get("value", "")
    return value or ""


def enwiki_title(entity):
    sitelink = (entity.get("sitelinks") or {}).get("enwiki")
    if isinstance(sitelink, dict):
        return sitelink.get("title", "")
    return sitelink or ""


def class_from_entity(entity, instances=None):
    images = best_values(entity, "P18")
    return ClassInfo(
        qid=entity["id"],
        label=(english(entity, "labels") or entity["id"])[:255],
        description=english(entity, "descriptions"),
        enwiki_title=enwiki_title(entity),
        image=images[0] if images else "",
        instances=instances,
        revision=entity.get("lastrevid"),
    )


def qid_from_uri(uri):
    if uri.startswith(ENTITY_PREFIX):
        qid = uri[len(ENTITY_PREFIX) :]
        return qid if qid[:1] == "Q" and qid[1:].isdigit() else ""
    return ""


def title_from_article_url(url):
    marker = "/wiki/"
    if marker not in url:
        return ""
    return unquote(url.split(marker, 1)[1]).replace("_", " ")


def file_from_filepath_url(url):
    if FILEPATH_MARKER not in url:
        return ""
    return unquote(url.split(FILEPATH_MARKER, 1)[1]).replace("_", " ")
