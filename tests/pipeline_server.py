"""A local stand-in for Wikidata, Wikimedia Commons and an OpenAI-compatible endpoint, for the pipeline tests.

It answers with the JSON shapes of the real ``wbsearchentities`` and ``wbgetentities`` calls, redirects
``Special:FilePath`` to an ``/upload/`` address the way Commons does, and can inject faults: slow answers, 429 with
``Retry-After``, 500s, dead links. Start it with ``with FakeWikimedia(...) as server:`` (port 0, ephemeral), and it
stops on exit.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def tiny_image(name: str, fmt: str = "PNG", size: tuple[int, int] = (8, 6)) -> bytes:
    """A small image whose colour depends on ``name``, so that files differ."""
    digest = hashlib.sha256(name.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", size, tuple(digest[:3])).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class Entity:
    label: str
    description: str = ""
    images: list[str] = field(default_factory=list)


@dataclass
class Fault:
    """One injected misbehaviour: a status (with headers) or a delay before the normal answer.

    With ``trickle_s``, the answer (``status`` and ``body``) is sent one byte every ``trickle_s`` seconds: all of it,
    or with ``trickle_body_only`` the headers at once (without Content-Length) and then the body.
    """

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body: bytes = b"<html>error</html>"
    content_type: str = "text/html"
    trickle_s: float = 0.0
    trickle_body_only: bool = False


class FakeWikimedia:
    """The fake services. Fill ``entities``, ``search_index``, ``sitelinks`` and ``files``; add faults with
    `add_fault` (matched as a substring of the request path and query, consumed in order)."""

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.search_index: dict[str, list[str]] = {}
        self.sitelinks: dict[str, str] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.chat_answer: str = ""
        self.delay_s = 0.0
        self.requests: list[str] = []
        self.user_agents: list[str | None] = []
        self._faults: list[tuple[str, list[Fault]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up -----------------------------------------------------------------------------------------------
    def add_fault(self, match: str, *faults: Fault) -> None:
        with self._lock:
            self._faults.append((match, list(faults)))

    def add_image(self, file_name: str, fmt: str = "PNG") -> None:
        self.files[file_name] = (f"image/{fmt.lower()}", tiny_image(file_name, fmt))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api(self) -> str:
        return self.base + "/w/api.php"

    @property
    def file_path(self) -> str:
        return self.base + "/wiki/Special:FilePath/"

    def count(self, fragment: str) -> int:
        """How many requests contained ``fragment``."""
        with self._lock:
            return sum(fragment in r for r in self.requests)

    # -- lifecycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> FakeWikimedia:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- answers ----------------------------------------------------------------------------------------------
    def next_fault(self, target: str) -> Fault | None:
        with self._lock:
            self.requests.append(target)
            for match, faults in self._faults:
                if match in target and faults:
                    return faults.pop(0)
        return None

    def api_answer(self, query: dict[str, str]) -> dict:
        action = query.get("action")
        if action == "wbsearchentities":
            return self._search(query)
        if action == "wbgetentities" and "titles" in query:
            return self._by_title(query)
        if action == "wbgetentities":
            return self._entities(query)
        return {"error": {"code": "badvalue", "info": f"Unrecognized value for parameter \"action\": {action}."}}

    def _search(self, query: dict[str, str]) -> dict:
        hits = self.search_index.get(query["search"], [])
        offset, limit = int(query.get("continue", 0)), int(query.get("limit", 7))
        page = hits[offset:offset + limit]
        answer = {
            "searchinfo": {"search": query["search"]},
            "search": [{"id": q, "title": q, "pageid": int(q[1:]), "concepturi": f"http://www.wikidata.org/entity/{q}",
                        "url": f"//www.wikidata.org/wiki/{q}", "label": self.entities[q].label,
                        "description": self.entities[q].description,
                        "match": {"type": "label", "language": "en", "text": self.entities[q].label}}
                       for q in page if q in self.entities],
            "success": 1,
        }
        if offset + limit < len(hits):
            answer["search-continue"] = offset + limit
        return answer

    def _entity_json(self, qid: str) -> dict:
        entity = self.entities[qid]
        claims = {"P18": [{"mainsnak": {"snaktype": "value", "property": "P18", "datatype": "commonsMedia",
                                        "datavalue": {"value": f, "type": "string"}},
                           "type": "statement", "id": f"{qid}$img{i}", "rank": "normal"}
                          for i, f in enumerate(entity.images)]} if entity.images else {}
        return {"type": "item", "id": qid,
                "labels": {"en": {"language": "en", "value": entity.label}} if entity.label else {},
                "descriptions": {"en": {"language": "en", "value": entity.description}} if entity.description else {},
                "claims": claims}

    def _entities(self, query: dict[str, str]) -> dict:
        found = {}
        for qid in query["ids"].split("|"):
            found[qid] = self._entity_json(qid) if qid in self.entities else {"id": qid, "missing": ""}
        return {"entities": found, "success": 1}

    def _by_title(self, query: dict[str, str]) -> dict:
        title = query["titles"]
        qid = self.sitelinks.get(title)
        if qid is None:
            return {"entities": {"-1": {"site": query["sites"], "title": title, "missing": ""}}, "success": 1}
        return {"entities": {qid: {"type": "item", "id": qid,
                                   "sitelinks": {"enwiki": {"site": "enwiki", "title": title, "badges": []}}}},
                "success": 1}


class _Handler(BaseHTTPRequestHandler):
    """Serves the `FakeWikimedia` its server carries (``server.fake``)."""

    protocol_version = "HTTP/1.0"

    @property
    def fake(self) -> FakeWikimedia:
        return self.server.fake

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _json(self, obj: dict, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _faulted(self) -> bool:
        self.fake.user_agents.append(self.headers.get("User-Agent"))
        fault = self.fake.next_fault(urllib.parse.unquote(self.path))
        if self.fake.delay_s:
            time.sleep(self.fake.delay_s)
        if fault is None:
            return False
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.status is None:
            return False
        if fault.trickle_s:
            self._trickle(fault)
        else:
            self._send(fault.status, fault.body, fault.content_type, fault.headers)
        return True

    def _trickle(self, fault: Fault) -> None:
        head = f"HTTP/1.0 {fault.status} OK\r\nContent-Type: {fault.content_type}\r\n"
        if not fault.trickle_body_only:
            head += f"Content-Length: {len(fault.body)}\r\n"
        head = (head + "\r\n").encode("ascii")
        try:
            if fault.trickle_body_only:
                self.wfile.write(head)
            for byte in (fault.body if fault.trickle_body_only else head + fault.body):
                time.sleep(fault.trickle_s)
                self.wfile.write(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cut the answer off

    def do_GET(self) -> None:  # noqa: N802 - http.server hook
        if self._faulted():
            return
        parts = urllib.parse.urlsplit(self.path)
        if parts.path == "/w/api.php":
            self._json(self.fake.api_answer(dict(urllib.parse.parse_qsl(parts.query))))
        elif parts.path.startswith("/wiki/Special:FilePath/"):
            name = urllib.parse.unquote(parts.path.split("/wiki/Special:FilePath/", 1)[1]).replace("_", " ")
            digest = hashlib.md5(name.replace(" ", "_").encode()).hexdigest()
            location = f"/upload/{digest[0]}/{digest[:2]}/{urllib.parse.quote(name.replace(' ', '_'))}"
            self._send(302, b"", "text/html", {"Location": location})
        elif parts.path.startswith("/upload/"):
            name = urllib.parse.unquote(parts.path.rsplit("/", 1)[1]).replace("_", " ")
            if name not in self.fake.files:
                self._send(404, b"<html>Not Found</html>", "text/html")
            else:
                content_type, body = self.fake.files[name]
                self._send(200, body, content_type)
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - http.server hook
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        if self._faulted():
            return
        if self.path.endswith("/chat/completions"):
            self._json({"id": "chatcmpl-1", "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": self.fake.chat_answer},
                                     "finish_reason": "stop"}]})
        else:
            self._send(404, b"not found", "text/plain")



# -- the tiny world the end-to-end tests build M3EL from -----------------------------------------------------------
OVERSIZED_LIMIT = 30_000
"""`ImageSettings.max_bytes` the tests use; ``Digby huge.png`` is larger."""


def _noise_png(size: int) -> bytes:
    import random

    raw = random.Random(0).randbytes(size * size * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), raw).save(buffer, format="PNG")
    return buffer.getvalue()


def populate_world(fake: FakeWikimedia) -> None:
    """Entities, search answers, sitelinks, images and faults behind the sources of `write_tiny_sources`."""
    e = fake.entities
    e["Q18151305"] = Entity("Kansas Saloon Smashers", "1901 film by Edwin Stanton Porter",
                            ["KansasSaloonSmashers1901.jpg"])
    e["Q1558"] = Entity("Kansas", "state of the United States of America", ["Kansas in United States.png"])
    e["Q204328"] = Entity("Kansas", "American rock band", ["Kansas Full 2.JPG"])
    e["Q1700479"] = Entity("Kansas", "1988 film by David Stevens", ["Kansas 1988 poster.jpg"])
    e["Q999"] = Entity("Kansas River", "river in Kansas")  # no image: not eligible
    e["Q1701"] = Entity("Kansas City", "", ["Kansas City.jpg"])  # no description: not eligible
    e["Q5000001"] = Entity("The Lost Reel", "2004 documentary film", ["Lost Reel.png"])
    e["Q5000002"] = Entity("Lost reel", "film reel lost at sea", ["Dead link.jpg"])  # image is a 404
    e["Q5000003"] = Entity("The Lost", "2006 horror film", ["The Lost.png"])
    e["Q5000004"] = Entity("Reel", "cylinder for film", ["Reel.png"])
    e["Q5000005"] = Entity("Lost Reel Records", "record label", ["Lost Reel Records.png"])
    e["Q6000001"] = Entity("Broken Film", "1999 film", ["Broken poster.jpg"])  # served bytes are HTML
    e["Q5275869"] = Entity("Digby Morrell", "Australian rules footballer", ["Digby huge.png", "Digby Morrell.jpg"])
    e["Q9990001"] = Entity("Digby Morrell Jr.", "fictional footballer", ["Digby Jr.png"])
    e["Q190192"] = Entity("Dune", "1965 novel by Frank Herbert", ["Dune first edition.jpg"])
    e["Q3041974"] = Entity("Dune", "2021 film directed by Denis Villeneuve", ["Dune 2021 poster.jpg"])
    e["Q44541"] = Entity("pancake", "flat cake made from batter and cooked on a pan", ["Pancakes stack.jpg"])
    e["Q7130806"] = Entity("Pancake", "Philippine band", ["Pancake band.png"])
    e["Q183"] = Entity("Germany", "country in Central Europe", ["Flag of Germany.png"])
    e["Q43287"] = Entity("German Empire", "empire in Central Europe between 1871 and 1918", ["Reich.png"])
    e["Q586"] = Entity("Bonn", "city in North Rhine-Westphalia, Germany", ["Bonn skyline.jpg"])
    fake.search_index.update({
        "Kansas Saloon Smashers": ["Q18151305", "Q1558", "Q204328"],
        "Kansas": ["Q1558", "Q999", "Q204328", "Q1701", "Q1700479"],
        "The Lost Reel": ["Q5000002", "Q5000003", "Q5000004", "Q5000005"],
        "Broken Film": ["Q6000001"],
        "Missing Page": ["Q1558"],
        "Digby Morrell": ["Q5275869", "Q9990001"],
        "Dune": ["Q3041974", "Q190192"],
        "Pancake": ["Q7130806", "Q44541"],
        "Germany": ["Q183", "Q43287"],
        "Bonn": ["Q586"],
    })
    fake.sitelinks.update({"Kansas Saloon Smashers": "Q18151305", "Kansas (1988 film)": "Q1700479",
                           "The Lost Reel": "Q5000001", "Broken Film": "Q6000001", "Digby Morrell": "Q5275869",
                           "Germany": "Q183", "Bonn": "Q586"})
    for entity in e.values():
        for name in entity.images:
            fake.add_image(name, "JPEG" if name.lower().endswith(".jpg") else "PNG")
    del fake.files["Dead link.jpg"]
    fake.files["Broken poster.jpg"] = ("image/jpeg", b"<html><body>Not an image</body></html>")
    fake.files["Digby huge.png"] = ("image/png", _noise_png(120))
    assert len(fake.files["Digby huge.png"][1]) > OVERSIZED_LIMIT
    # Faults: a 429 with Retry-After on a search, 500s on entity details, a slow answer on a title lookup.
    fake.add_fault("search=Kansas&", Fault(429, {"Retry-After": "1"}))
    fake.add_fault("ids=Q5275869", Fault(500), Fault(503))
    fake.add_fault("titles=Bonn", Fault(delay_s=1.0))


def write_tiny_sources(folder) -> dict:
    """The five topics' raw sources, a few rows each; returns ``{topic: path}``."""
    import csv
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write_csv(name: str, header: list[str], rows: list[list[str]]) -> Path:
        path = folder / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    wiki = "https://en.wikipedia.org/wiki/"
    movies = write_csv("wiki_movie_plots_deduped.csv", ["Release Year", "Title", "Wiki Page", "Plot"], [
        ["1901", "Kansas Saloon Smashers", wiki + "Kansas_Saloon_Smashers",
         "Kansas Saloon Smashers is a 1901 comedy short film produced by Edison Studios.\n"],
        ["1988", "Kansas", wiki + "Kansas_(1988_film)", "Two drifters meet on a train to Kansas."],
        ["2004", "The Lost Reel", wiki + "The_Lost_Reel", "A documentary about a film reel lost at sea."],
        ["1999", "Broken Film", wiki + "Broken_Film", "A film whose poster is broken."],
        ["2001", "Missing Page", wiki + "Missing_Page", "A film without a Wikidata item."],
    ])
    person = write_csv("people_wiki.csv", ["URI", "name", "text"], [
        ["<http://dbpedia.org/resource/Digby_Morrell>", "Digby Morrell",
         "digby morrell born 10 october 1979 is a former australian rules footballer"],
    ])
    books = write_csv("Books.csv", ["ISBN", "Book-Title", "Book-Author", "Year-Of-Publication", "Publisher",
                                    "Image-URL-L"], [
        ["0441013597", "Dune", "Frank Herbert", "1965", "Chilton Books", "http://images.amazon.com/x.jpg"],
    ])
    common = write_csv("wikihow.csv", ["Target", "Text"], [
        ["Pancake", "Mix flour, eggs and milk into a batter, then cook the flat cake in a hot pan."],
    ])
    sports = folder / "AIDA-YAGO2-dataset.tsv"
    sports.write_text(
        "-DOCSTART- (1 EU)\n"
        "EU\tB\tEU\t--NME--\nrejects\n"
        "Germany\tB\tGermany\tGermany\thttp://en.wikipedia.org/wiki/Germany\t11867\t/m/0345h\n"
        "call\nin\n"
        "Bonn\tB\tBonn\tBonn\thttp://en.wikipedia.org/wiki/Bonn\t3295\t/m/01sq3\n"
        ".\n\n"
        "Germany\tB\tGermany\tGermany\thttp://en.wikipedia.org/wiki/Germany\t11867\t/m/0345h\n"
        "wins\n.\n",
        encoding="utf-8",
    )
    return {"movies": movies, "common": common, "person": person, "books": books, "sports": sports}


def pipeline_settings(fake: FakeWikimedia, work_dir, sources: dict) -> dict:
    """`PipelineConfig` fields (JSON-ready) pointing at ``fake``, with delays scaled down for tests."""
    return {
        "work_dir": str(work_dir),
        "sources": {topic: str(path) for topic, path in sources.items()},
        "http": {"timeout_s": 0.5, "max_retries": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                 "max_retry_after_s": 0.05, "min_interval_s": 0.0},
        "endpoints": {"wikidata_api": fake.api, "commons_file_path": fake.file_path},
        "images": {"max_bytes": OVERSIZED_LIMIT, "thumb_width": 320},
        "stage": {"max_attempts": 2, "workers": 2},
    }
