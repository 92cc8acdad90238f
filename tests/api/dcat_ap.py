"""DCAT-AP 3: the catalogue in each RDF syntax, and one dataset's description, validated with
pyshacl against the SHACL shapes SEMIC publishes (tests/api/dcat-ap/), without inference, so
every class a range asks for must be stated."""

import pathlib
import urllib.request

from pyshacl import validate
from rdflib import Graph

SHAPES = pathlib.Path(__file__).parent / "dcat-ap"


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.read(), r.headers.get("Content-Type", "")


def shapes():
    g = Graph()
    for name in ("shapes.ttl", "range.ttl"):
        g.parse(SHAPES / name, format="turtle")
    return g


def conforms(data, fmt, what, shape_graph):
    g = Graph()
    g.parse(data=data, format=fmt)
    assert len(g) > 0, f"{what}: empty graph"
    ok, _, text = validate(g, shacl_graph=shape_graph, inference="none", advanced=True)
    assert ok, f"{what} does not conform to DCAT-AP 3:\n{text[:4000]}"
    return g


def check(base):
    shape_graph = shapes()
    counts = set()
    for ext, fmt, media in (("ttl", "turtle", "text/turtle"), ("rdf", "xml", "application/rdf+xml"),
                            ("jsonld", "json-ld", "application/ld+json")):
        body, content_type = fetch(f"{base}/catalog.{ext}")
        assert content_type.startswith(media), f"catalog.{ext}: {content_type}"
        g = conforms(body, fmt, f"catalog.{ext}", shape_graph)
        counts.add(len(g))
        negotiated, content_type = fetch(f"{base}/catalog", accept=media)
        assert content_type.startswith(media), f"/catalog for {media}: {content_type}"
    assert len(counts) == 1, f"the three syntaxes carry the same triples: {counts}"
    dataset, _ = fetch(f"{base}/data/datasets/province-population-age-structure/dcat.ttl")
    g = conforms(dataset, "turtle", "a dataset's description", shape_graph)
    titles = [str(o) for o in g.objects(None, None) if "年龄结构" in str(o)]
    assert titles, "the dataset's title is in its description"
    print(f"DCAT-AP 3: catalogue conforms in Turtle, RDF/XML and JSON-LD ({counts.pop()} triples)")
