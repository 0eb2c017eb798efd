"""Classes from a Wikidata JSON dump: one pass, counting what items are instances of, in bounded memory.

The dump is a JSON array with one entity per line (`.json`, `.json.gz` or `.json.bz2`). Counting every
P31 target exactly would need a counter per class ever named (millions); we keep at most `capacity`
counters with the Misra-Gries summary instead: any class with more than (items / capacity) instances is
kept, and its count is low by at most that much. Class details (label, description, enwiki, P18) are kept
only for entities that may still matter, within the same bound.
"""

import bz2
import gzip
import json
from pathlib import Path

from catalog.progress import no_progress

from .wikidata import ClassInfo, best_values, class_from_entity

DEFAULT_CAPACITY = 200_000


def open_dump(path):
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8")
    return path.open("rt", encoding="utf-8")


def entities(path):
    """Entities of a dump, one per line; lines that are not an entity (the brackets) are passed over."""
    with open_dump(path) as lines:
        for line in lines:
            line = line.strip().rstrip(",")
            if not line.startswith("{"):
                continue
            yield json.loads(line)


class ClassCounter:
    """Misra-Gries heavy hitters over P31 targets, plus details of entities that may be top classes."""

    def __init__(self, capacity=DEFAULT_CAPACITY):
        self.capacity = capacity
        self.counts = {}
        self.details = {}  # qid -> ClassInfo
        self.items = 0

    def add(self, entity):
        qid = entity.get("id", "")
        if not qid.startswith("Q"):
            return
        self.items += 1
        for target in best_values(entity, "P31"):
            self._count(target)
        # A class is an item others are instances of, or one that is a subclass of something.
        if qid in self.counts or best_values(entity, "P279"):
            self.details[qid] = class_from_entity(entity)
            if len(self.details) > self.capacity:
                self._prune_details()

    def _count(self, target):
        if target in self.counts:
            self.counts[target] += 1
        elif len(self.counts) < self.capacity:
            self.counts[target] = 1
        else:
            # Full: every counter pays one, the newcomer included; amortised O(1) per item.
            self.counts = {k: c - 1 for k, c in self.counts.items() if c > 1}

    def _prune_details(self):
        self.details = {k: v for k, v in self.details.items() if k in self.counts}

    def top(self, n):
        """ClassInfo for the n classes with the most instances, most first; details may be partial."""
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        result = []
        for qid, count in ranked:
            info = self.details.get(qid)
            if info is None:
                info = ClassInfo(qid=qid, label=qid)
            info.instances = count
            result.append(info)
        return result


def top_classes_from_dump(path, limit, capacity=DEFAULT_CAPACITY, progress=no_progress):
    counter = ClassCounter(capacity)
    stream = entities(path)
    for entity in progress(stream):
        counter.add(entity)
    return counter.top(limit)
