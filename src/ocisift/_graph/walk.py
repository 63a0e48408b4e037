"""Walking a graph of indexes and manifests, the same for every store.

The walk depends only on a `load` callable, so it can be tested over plain
dictionaries; `document_loader` gives one that reads each document from a
store once, however often the graph mentions it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from .._core import mediatypes as mt
from .._core.errors import MalformedDocument, NotFoundError
from .._core.models import Descriptor, Document, Index
from .._stores.base import Reader, load_document

MAX_DEPTH = 16
MAX_NODES = 100_000

Loader = Callable[[Descriptor], Document]
Visit = tuple[Descriptor, Document, tuple[Descriptor, ...]]
OnAbsent = Callable[[Descriptor, tuple[Descriptor, ...]], None]


def document_loader(store: Reader) -> Loader:
    """Parse each manifest or index once; later visits of the same digest reuse it."""
    cache: dict[str, Document] = {}
    lock = threading.Lock()

    def load(desc: Descriptor) -> Document:
        key = f"{desc.digest}/{desc.media_type}/{desc.size}"
        with lock:
            found = cache.get(key)
        if found is None:
            found = load_document(store, desc)
            with lock:
                cache[key] = found
        return found

    return load


def walk(root: Descriptor, load: Loader, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
         on_absent: OnAbsent | None = None) -> Iterator[Visit]:
    """Depth-first over indexes (nested, Docker lists too), guarded against cycles and depth bombs.

    Yields (descriptor, document, path from the root) for every index and
    manifest, parents before children. A child the store does not hold (an
    export of one platform keeps the index that lists them all) is reported to
    `on_absent` and passed over; without it, it is the NotFoundError it was.
    """
    for desc, doc, path in _walk(root, load, max_depth, max_nodes, on_absent, lazy_manifests=False):
        assert doc is not None
        yield desc, doc, path


def walk_lazily(root: Descriptor, load: Loader, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
                on_absent: OnAbsent | None = None) -> Iterator[tuple[Descriptor, Document | None,
                                                                      tuple[Descriptor, ...]]]:
    """As `walk`, but a child whose index entry says it is an image manifest is not read: it comes with
    None, for the caller to read only if the entry alone cannot rule it out (a registry serves each
    manifest by its own request; a pull by platform needs one of them, not all)."""
    yield from _walk(root, load, max_depth, max_nodes, on_absent, lazy_manifests=True)


def _walk(root: Descriptor, load: Loader, max_depth: int, max_nodes: int, on_absent: OnAbsent | None, *,
          lazy_manifests: bool) -> Iterator[tuple[Descriptor, Document | None, tuple[Descriptor, ...]]]:
    budget = [max_nodes]

    def visit(desc: Descriptor, path: tuple[Descriptor, ...]) -> Iterator[tuple[Descriptor, Document | None,
                                                                             tuple[Descriptor, ...]]]:
        if any(p.digest == desc.digest for p in path):
            raise MalformedDocument(f"cycle in the graph: {desc.digest} is its own ancestor")
        if len(path) > max_depth:
            raise MalformedDocument(f"index nesting deeper than {max_depth} levels at {desc.digest}")
        budget[0] -= 1
        if budget[0] < 0:
            raise MalformedDocument(f"graph has more than {max_nodes} manifests; refusing to walk it")
        if lazy_manifests and path and mt.is_manifest(desc.media_type):
            yield desc, None, path
            return
        try:
            doc = load(desc)
        except NotFoundError:
            if on_absent is None or not path:
                raise
            on_absent(desc, path)
            return
        yield desc, doc, path
        if isinstance(doc, Index):
            for child in doc.children:
                yield from visit(child, (*path, desc))

    yield from visit(root, ())
