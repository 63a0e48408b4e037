"""gc and writers at once: a blob a push is reusing while gc runs is never lost."""

from __future__ import annotations

import os
import threading
import time

import ocisift
from ocisift import Selector
from ocisift._core.models import parse_document


def test_gc_never_takes_a_blob_a_concurrent_push_reuses(tmp_path, monkeypatch):
    layout = f"oci:{tmp_path}/layout"
    shared = tmp_path / "shared.bin"
    shared.write_bytes(os.urandom(64 * 1024))
    # The blob is in the layout already, old and unreachable: exactly what gc removes.
    ocisift.push(layout, [str(shared)])
    index = tmp_path / "layout" / "index.json"
    index.write_text('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    hour_ago = time.time() - 3600
    for blob in blobs.iterdir():
        os.utime(blob, (hour_ago, hour_ago))

    # Widen the race: after the push has decided to reuse the shared blob, it takes a while to write the
    # rest (the note, the config) before the manifest that makes the shared blob reachable again.
    from ocisift._stores.layout import LayoutStore

    real_push = LayoutStore.push

    def slow_push(self, desc, stream):
        real_push(self, desc, stream)
        if desc.size < 16:  # the note
            time.sleep(0.15)

    monkeypatch.setattr(LayoutStore, "push", slow_push)
    stop = threading.Event()
    swept: list[int] = []
    errors: list[BaseException] = []

    def collect() -> None:
        while not stop.is_set():
            try:
                swept.append(len(ocisift.gc(layout, grace_seconds=2.0).removed))
            except BaseException as exc:
                errors.append(exc)
                return

    sweeper = threading.Thread(target=collect)
    sweeper.start()
    try:
        for round_ in range(12):
            if round_:  # the shared blob unreachable and old again: what gc wants to take
                ocisift.untag(f"{layout}:r{round_ - 1}")
            for blob in blobs.iterdir():
                os.utime(blob, (hour_ago, hour_ago))
            note = tmp_path / f"note{round_}.txt"
            note.write_text(str(round_))
            pushed = ocisift.push(f"{layout}:r{round_}", [str(shared), str(note)])
            manifest = parse_document(ocisift.manifest(f"{layout}:r{round_}"))
            for blob in manifest.blobs:
                assert (blobs / blob.digest.hex).is_file(), f"round {round_}: {blob.digest} was collected"
            assert ocisift.resolve(f"{layout}:r{round_}").descriptor.digest == pushed.descriptor.digest
            out = tmp_path / "out" / str(round_)
            ocisift.pull(f"{layout}:r{round_}", str(out), Selector(), layers=ocisift.LayerSelector.build(all=True))
            assert (out / "shared.bin").read_bytes() == shared.read_bytes()
    finally:
        stop.set()
        sweeper.join(60)
    assert errors == []
    assert len(swept) > 5  # gc really ran alongside, many times
