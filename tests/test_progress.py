"""Progress reaches the hook with every byte of every transferred blob, and rich draws it."""

from __future__ import annotations

import io
from collections import Counter

import ocisift
from ocisift._cli.progress import RichProgress


class Recorder:
    def __init__(self):
        self.bytes: Counter = Counter()
        self.sizes: dict[str, int] = {}
        self.ended: set[str] = set()

    def begin(self, desc, verb):
        key = str(desc.digest)
        self.sizes[key] = desc.size
        return lambda n: self.bytes.update({key: n})

    def end(self, desc):
        self.ended.add(str(desc.digest))


def test_pull_and_copy_report_every_byte(sample, tmp_path):
    rec = Recorder()
    result = ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "m"), mode="extract-all", progress=rec)
    assert set(rec.sizes) == {str(p.descriptor.digest) for p in result.plan} == rec.ended
    assert all(rec.bytes[k] == size for k, size in rec.sizes.items())
    rec = Recorder()
    copied = ocisift.copy(f"oci:{sample}:1.2", f"oci:{tmp_path}/c:1.2", progress=rec)
    blobs = [d for d in copied.copied if d in rec.sizes]
    assert len(blobs) == 8 and all(rec.bytes[d] == rec.sizes[d] for d in blobs)


def test_rich_bars_render_on_a_terminal(sample, tmp_path):
    from rich.console import Console

    out = io.StringIO()
    with RichProgress(Console(file=out, force_terminal=True, width=100)) as bars:
        result = ocisift.pull(f"oci:{sample}:7.2", str(tmp_path / "m"), mode="extract-all", progress=bars)
    text = out.getvalue()
    for p in result.plan:
        assert f"unpack {p.descriptor.digest.hex[:12]}" in text
