"""Fuzzing with hypothesis: only ocisift's own errors come out, and nothing is written outside the output."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import member, raw_tar
from ocisift._core import mediatypes as mt
from ocisift._core.digest import Digest, VerifyingReader
from ocisift._core.errors import OcisiftError
from ocisift._core.models import Descriptor, parse_document
from ocisift._core.platform import Platform
from ocisift._unpack.extract import TreeBuilder
from ocisift._unpack.limits import ExtractLimits

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
descriptor_like = st.fixed_dictionaries({}, optional={
    "mediaType": st.sampled_from([mt.OCI_MANIFEST, mt.OCI_INDEX, "x/y", ""]) | st.text(max_size=10),
    "digest": st.sampled_from(["sha256:" + "a" * 64, "sha512:" + "b" * 128, "sha256:zz", "md5:x"]) | st.text(max_size=10),
    "size": st.integers(-3, 10**6) | st.text(max_size=3),
    "annotations": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
    "platform": st.fixed_dictionaries({}, optional={"os": st.text(max_size=5) | st.integers(),
                                                    "architecture": st.text(max_size=5),
                                                    "os.features": st.lists(st.text(max_size=3)) | st.integers()}),
})
documents = st.fixed_dictionaries({}, optional={
    "schemaVersion": st.integers(0, 3),
    "mediaType": st.sampled_from([mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_LIST, "bogus"]),
    "config": descriptor_like,
    "layers": st.lists(descriptor_like, max_size=3) | json_values,
    "manifests": st.lists(descriptor_like, max_size=3) | json_values,
    "subject": descriptor_like,
    "annotations": json_values,
})


@settings(max_examples=400, deadline=None)
@given(st.one_of(documents.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200),
                 json_values.map(lambda v: json.dumps(v).encode())),
       st.sampled_from([None, mt.OCI_MANIFEST, mt.OCI_INDEX]))
def test_fuzz_document_decoding(raw, claimed):
    try:
        parse_document(raw, claimed)
    except OcisiftError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_platform_parser(text):
    try:
        Platform.parse(text)
    except OcisiftError:
        pass


segment = st.sampled_from(["a", "b", "..", ".", "", "dev", "etc", "c d", "\u00e9", ".wh.a", ".wh..wh..opq"])
paths = st.lists(segment, min_size=1, max_size=4).map("/".join) | st.sampled_from(["/abs", "/", "../x", "a/../../x"])
kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE])
members = st.lists(st.tuples(paths, kinds, paths, st.binary(max_size=64)), min_size=1, max_size=8)


@pytest.mark.parametrize("reader", ["native", "tarfile"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members, st.booleans())
def test_fuzz_hostile_tar_members(reader, entries, image_layer):
    outer = tempfile.mkdtemp(prefix="ocisift-fuzz-")
    try:
        root = os.path.join(outer, "out")
        os.mkdir(root)
        sentinel_before = set(os.listdir(outer))
        tar_entries = []
        for name, kind, link, data in entries:
            info = member(name or "x", kind, linkname=link)
            tar_entries.append((info, data if kind == tarfile.REGTYPE else None))
        try:
            blob = gzip.compress(raw_tar(tar_entries))
        except (ValueError, tarfile.TarError, UnicodeError):
            return  # tarfile cannot even write it
        desc = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(blob), len(blob))
        builder = TreeBuilder(root, limits=ExtractLimits(max_bytes=1 << 20))
        builder.reader = reader
        import io

        accepted = True
        try:
            builder.apply(VerifyingReader(io.BytesIO(blob), desc.digest, desc.size), desc.media_type, 0,
                          image_layer=image_layer)
            builder.finish()
        except OcisiftError:
            accepted = False  # a pull then throws its private staging directory away
        # Nothing was ever written beside the output directory.
        assert set(os.listdir(outer)) == sentinel_before
        if not accepted:
            return
        # An accepted tree has nothing that lives or leads outside it.
        real_root = os.path.realpath(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    target = os.path.realpath(path, strict=True)
                except OSError:
                    target = None  # dangling or looping: leads nowhere
                if target is not None:
                    assert target == real_root or target.startswith(real_root + os.sep), (path, target)
                if os.path.islink(path):  # dangling links too: their text must not climb out
                    text = os.readlink(path)
                    lexical = os.path.normpath(os.path.join(os.path.dirname(path), text))
                    assert not text.startswith("/") and (lexical == root or lexical.startswith(root + os.sep))
                mode = os.lstat(path).st_mode
                assert not (tarfile.stat.S_ISCHR(mode) or tarfile.stat.S_ISBLK(mode) or tarfile.stat.S_ISFIFO(mode))
    finally:
        shutil.rmtree(outer, ignore_errors=True)
