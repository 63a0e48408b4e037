"""Progress reaches the hook with every byte of every transferred blob, and rich draws it."""

from __future__ import annotations

import io
from collections import Counter

import ocisift
from ocisift._cli.progress import RichProgress, blob_label, short_media_type


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
        assert f"unpack {blob_label(p.descriptor)}" in text
        assert blob_label(p.descriptor) != p.descriptor.digest.hex[:8]  # a name, not a bare digest


def test_bars_are_named_by_title_or_short_media_type_and_show_text_as_data():
    from rich.console import Console

    from ocisift._core import mediatypes as mt
    from ocisift._core.digest import Digest
    from ocisift._core.models import Descriptor

    digest = Digest.of(b"x")
    titled = Descriptor("application/octet-stream", digest, 1, {mt.ANNOTATION_TITLE: "repo.tar.gz"})
    assert blob_label(titled) == f"repo.tar.gz {digest.hex[:8]}"
    for media_type, short in [(mt.OCI_LAYER_GZIP, "layer tar+gzip"), (mt.OCI_CONFIG, "config"),
                              ("application/vnd.oci.image.layer.v1.tar", "layer tar"),
                              ("application/spdx+json", "spdx+json"),
                              ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "helm.chart.content.v1.tar+gzip")]:
        assert short_media_type(media_type) == short, media_type
    hostile = Descriptor("application/octet-stream", digest, 1, {mt.ANNOTATION_TITLE: "[bold red]x\x1b[2J"})
    out = io.StringIO()
    with RichProgress(Console(file=out, force_terminal=True, width=120)) as bars:
        bars.begin(hostile, "fetch")(1)
    text = out.getvalue()
    assert "[bold red]x\\u001b[2J" in text and "\x1b[2J" not in text
