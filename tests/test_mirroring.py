"""Mirroring against real distribution registries: referrers, every tag, semver, sync specs, bundles.

Two registries run side by side (a source and a mirror, and for the air-gapped story an inside
registry reached only through an archive). Request counts come from the registries' own access logs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import ocisift
from ocisift import Selector
from ocisift._demo import build_sample_layout
from registry import run_registry

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is needed")

SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"
ATTESTATION = "application/vnd.in-toto+json"
RELEASES = ("1.0.0", "1.2.0", "1.10.0", "v1.11.0-rc.1", "2.0.0", "latest")


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A registry with a multi-platform image under several release tags, each with referrers:
    a signature and an SBOM on the index, a signature on the SBOM, an attestation on one platform."""
    work = tmp_path_factory.mktemp("mirror-source")
    layout = work / "layout"
    build_sample_layout(str(layout))
    with run_registry(work / "reg") as reg:
        repo = f"{reg.host}/acme/app"
        for n, tag in enumerate(RELEASES):
            # each release its own content: an annotation on a fresh index over the same platforms
            made = ocisift.index_create(f"oci:{work}/rel{n}:{tag}", [f"oci:{layout}:1.2"],
                                        annotations=[f"org.opencontainers.image.version={tag}"])
            ocisift.copy(f"oci:{work}/rel{n}:{tag}", f"{repo}:{tag}")
            assert ocisift.resolve(f"{repo}:{tag}").descriptor.digest == made.descriptor.digest
        subject = f"{repo}:1.10.0"
        ocisift.push(repo, [_file(work, "sig.json", '{"sig": 1}')], artifact_type=SIG, subject=subject)
        sbom = ocisift.push(repo, [_file(work, "sbom.json", '{"spdx": 1}')], artifact_type=SBOM, subject=subject)
        ocisift.push(repo, [_file(work, "sbom-sig.json", '{"sig": 2}')], artifact_type=SIG,
                     subject=sbom.reference)
        child = ocisift.resolve(subject, Selector.build("linux/amd64:el8")).descriptor.digest
        ocisift.push(repo, [_file(work, "att.json", '{"att": 1}')], artifact_type=ATTESTATION,
                     subject=f"{repo}@{child}")
        reg.repo = repo  # type: ignore[attr-defined]
        reg.sbom = sbom  # type: ignore[attr-defined]
        reg.child = child  # type: ignore[attr-defined]
        yield reg


@pytest.fixture
def mirror(tmp_path):
    with run_registry(tmp_path / "mirror") as reg:
        yield reg


def _requests(log: str, method: str | None = None) -> list[str]:
    """The access log's request lines (distribution logs each as `"METHOD /v2/… HTTP/1.1"`)."""
    found = re.findall(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ "]*) HTTP', log)
    return [f"{m} {p}" for m, p in found if method is None or (m == method and p != "/v2/")]


def _referrer_digests(node: dict) -> set[str]:
    out = set()
    for child in node["manifests"]:
        out.add(child["digest"])
        out |= _referrer_digests(child)
    return out


# -- referrers ---------------------------------------------------------------------------------------


def test_referrers_lists_what_oras_discover_shows(source, cli):
    res = cli("referrers", f"{source.repo}:1.10.0", "--format", "json")
    assert res.code == 0, res.err
    top = res.json()
    assert top["reference"].startswith(f"{source.repo}@sha256:")
    assert sorted(m["artifactType"] for m in top["manifests"]) == [SBOM, SIG]
    assert all(m["manifests"] == [] for m in top["manifests"])  # not recursive: one level
    deep = cli("referrers", f"{source.repo}:1.10.0", "--recursive", "--format", "json").json()
    sbom = next(m for m in deep["manifests"] if m["artifactType"] == SBOM)
    assert sbom["digest"] == str(source.sbom.descriptor.digest)
    assert [m["artifactType"] for m in sbom["manifests"]] == [SIG]  # the signature on the SBOM
    only = cli("referrers", f"{source.repo}:1.10.0", "--artifact-type", "application/spdx*", "--format", "json")
    assert [m["artifactType"] for m in only.json()["manifests"]] == [SBOM]
    before = len(source.log_text())
    text = cli("referrers", f"{source.repo}:1.10.0", "--recursive")
    assert text.code == 0 and text.out.count(SIG) == 2 and SBOM in text.out
    asked = _requests(source.log_text()[before:])
    # distribution 2.8 has no referrers API: its 404 is learnt once, then only fallback tags are read
    assert len([r for r in asked if "/referrers/" in r]) == 1, asked
    assert len([r for r in asked if "/manifests/sha256-" in r]) == 4, asked  # the subject, its 2 referrers, the SBOM's signature
    # one platform manifest has its own attestation
    child = cli("referrers", f"{source.repo}@{source.child}", "--format", "json").json()
    assert [m["artifactType"] for m in child["manifests"]] == [ATTESTATION]
    none = cli("referrers", f"{source.repo}:1.0.0")
    assert none.code == 0 and "(no referrers)" in none.out


# -- copy --referrers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["registry", "layout", "archive"])
def test_copy_with_referrers_carries_every_level(source, mirror, tmp_path, kind, cli):
    dst = {"registry": f"{mirror.host}/mirror/app:1.10.0", "layout": f"oci:{tmp_path}/layout:1.10.0",
           "archive": f"oci-archive:{tmp_path}/bundle.tar:1.10.0"}[kind]
    res = cli("copy", f"{source.repo}:1.10.0", dst, "--referrers", "--format", "json")
    assert res.code == 0, res.err
    assert len(res.json()["referrers"]) == 4  # signature, SBOM, the SBOM's signature, the attestation
    want = cli("referrers", f"{source.repo}:1.10.0", "--recursive", "--format", "json").json()
    got = cli("referrers", dst, "--recursive", "--format", "json").json()
    assert got["digest"] == want["digest"]
    assert _referrer_digests(got) == _referrer_digests(want)
    dst_child = dst.rsplit(":", 1)[0] + f"@{source.child}"
    assert [m["artifactType"] for m in cli("referrers", dst_child, "--format", "json").json()["manifests"]] \
        == [ATTESTATION]
    # selection by referrer works at the destination as at the source
    sbom = ocisift.resolve(dst, Selector.build(artifact_type=SBOM, referrers=True))
    assert sbom.descriptor.digest == source.sbom.descriptor.digest


def test_copy_without_referrers_leaves_them(source, mirror, cli):
    assert cli("copy", f"{source.repo}:1.10.0", f"{mirror.host}/plain/app:1.10.0").code == 0
    assert cli("referrers", f"{mirror.host}/plain/app:1.10.0", "--format", "json").json()["manifests"] == []


# -- every tag ----------------------------------------------------------------------------------------


def test_copy_all_tags_excludes_fallback_tags_and_is_cheap_the_second_time(source, mirror, cli):
    assert any(t.startswith("sha256-") for t in ocisift.tags(source.repo, referrer_tags=True))
    dst = f"{mirror.host}/all/app"
    first = cli("copy", "--all-tags", source.repo, dst, "--format", "json")
    assert first.code == 0, first.err
    assert sorted(ocisift.tags(dst)) == sorted(RELEASES)  # no sha256-… tag copied as a tag
    copied_blobs = {d for t in first.json()["tags"] for d in t["copied"]}
    assert len(copied_blobs) == sum(len(t["copied"]) for t in first.json()["tags"])  # each blob moved once
    before_src, before_dst = len(source.log_text()), len(mirror.log_text())
    again = cli("copy", "--all-tags", source.repo, dst, "--format", "json")
    assert again.code == 0 and all(t["unchanged"] for t in again.json()["tags"])
    src_requests = _requests(source.log_text()[before_src:])
    dst_requests = _requests(mirror.log_text()[before_dst:])
    manifest_requests = [r for r in src_requests if "/manifests/" in r]
    assert all(r.startswith("HEAD ") for r in manifest_requests), src_requests
    assert len(manifest_requests) == len(RELEASES), src_requests  # one HEAD per tag, no manifest read
    assert not any("/blobs/" in r for r in src_requests + dst_requests)
    assert len([r for r in dst_requests if "/manifests/" in r]) == len(RELEASES), dst_requests


def test_copy_all_tags_with_a_semver_range(source, mirror, cli):
    dst = f"{mirror.host}/ranged/app"
    res = cli("copy", "--all-tags", source.repo, dst, "--semver", ">=1.0.0 <2.0.0", "--format", "json")
    assert res.code == 0, res.err
    assert sorted(ocisift.tags(dst)) == sorted(["1.0.0", "1.2.0", "1.10.0"])


# -- semver -------------------------------------------------------------------------------------------


def test_semver_picks_the_highest_release_inside_the_range(source, tmp_path, cli):
    res = cli("resolve", source.repo, "--semver", ">=1.0.0 <2.0.0")
    assert res.code == 0, res.err
    assert res.out.strip() == str(ocisift.resolve(f"{source.repo}:1.10.0").descriptor.digest)
    assert "tag 1.10.0" in res.err  # 1.10.0, not 1.2.0: versions, not strings
    assert cli("resolve", source.repo, "--semver", ">=1.0.0 <2.0.0", "--format", "json").json()["tag"] == "1.10.0"
    # a pre-release only when the range names one
    pre = cli("resolve", source.repo, "--semver", ">=1.11.0-0 <2.0.0", "--format", "json")
    assert pre.json()["tag"] == "v1.11.0-rc.1"
    assert cli("resolve", source.repo, "--semver", "^2", "--format", "json").json()["tag"] == "2.0.0"
    assert cli("resolve", source.repo, "--semver", "~1.2", "--format", "json").json()["tag"] == "1.2.0"
    pulled = cli("pull", source.repo, "--semver", "1.x", "--platform", "linux/amd64:el8", "-o", str(tmp_path / "o"),
                 "--format", "json")
    assert pulled.code == 0, pulled.err
    assert pulled.json()["revision"].startswith("1.10.0@sha256:")
    listed = cli("tags", source.repo, "--semver", ">=1", "--format", "json").json()
    assert listed["tags"] == ["1.0.0", "1.2.0", "1.10.0", "2.0.0"] and listed["chosen"] == "2.0.0"
    filtered = cli("tags", source.repo, "--semver", ">=1", "--tag-regex", r"^1\.1", "--format", "json").json()
    assert filtered["tags"] == ["1.10.0"]


def test_semver_without_a_match_lists_the_closest_tags(source, cli):
    res = cli("resolve", source.repo, "--semver", ">=3.0.0", "--format", "json")
    assert res.code == 3
    assert "2.0.0" in res.json()["error"]["message"]
    assert cli("resolve", f"{source.repo}:1.0.0", "--semver", "^1").code == 2  # a tag and a range: which?
    assert cli("resolve", source.repo, "--semver", "not a range").code == 2


def test_copy_with_semver_names_the_destination_by_the_chosen_tag(source, mirror, cli):
    res = cli("copy", source.repo, f"{mirror.host}/picked/app", "--semver", "<2", "--format", "json")
    assert res.code == 0, res.err
    assert res.json()["tag"] == "1.10.0"
    assert ocisift.tags(f"{mirror.host}/picked/app") == ["1.10.0"]


# -- docker:// --------------------------------------------------------------------------------------


def test_docker_scheme_is_accepted_wherever_a_registry_reference_is(source, mirror, cli):
    digest = cli("resolve", f"docker://{source.repo}:1.0.0").out.strip()
    assert digest == str(ocisift.resolve(f"{source.repo}:1.0.0").descriptor.digest)
    assert cli("copy", f"docker://{source.repo}:1.0.0", f"docker://{mirror.host}/dockerscheme/app:1.0.0").code == 0
    assert cli("resolve", f"{mirror.host}/dockerscheme/app:1.0.0").out.strip() == digest


# -- sync ---------------------------------------------------------------------------------------------


def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mirror.yaml"
    path.write_text(text)
    return str(path)


def test_sync_runs_every_form_and_a_failing_source_does_not_stop_the_others(source, mirror, tmp_path, cli):
    spec = _spec(tmp_path, f"""
defaults:
  referrers: true
images:
  - source: {source.repo}
    tags: [1.0.0, latest]
    destination: {mirror.host}/list/app
  - source: docker://{source.repo}
    tags: {{semver: ">=1.0.0 <2.0.0"}}
    destination: oci:{tmp_path}/semver
    platforms: [linux/amd64:el8]
  - source: {source.repo}
    tags: {{regex: "^2\\\\."}}
    destination: oci-archive:{tmp_path}/regex.tar
    referrers: false
  - source: {source.repo}
    tags: all
    destination: {mirror.host}/everything/app
  - source: {source.host}/acme/missing
    tags: [1.0.0]
    destination: {mirror.host}/missing/app
""")
    res = cli("sync", spec, "--format", "json")
    assert res.code == 3, res.out + res.err  # the missing source: not found, the worst failure
    out = res.json()
    images = out["images"]
    assert [i["tags"] for i in images[:3]] == [["1.0.0", "latest"], ["1.0.0", "1.2.0", "1.10.0"], ["2.0.0"]]
    assert sorted(images[3]["tags"]) == sorted(RELEASES)
    assert images[4]["error"]["code"] == 3 and [f["line"] for f in out["failed"]] == [images[4]["line"]]
    assert f"{mirror.host}/list/app:latest" in out["copied"]
    assert sorted(ocisift.tags(f"{mirror.host}/everything/app")) == sorted(RELEASES)
    # the platform filter: the layout holds the one el8 manifest under each tag, with its attestation
    el8 = ocisift.resolve(f"oci:{tmp_path}/semver:1.10.0")
    assert el8.descriptor.digest == source.child
    atts = ocisift.referrers(f"oci:{tmp_path}/semver@{source.child}")
    assert [r.descriptor.artifact_type for r in atts.referrers] == [ATTESTATION]
    # referrers: true by default, false for the archive
    sigs = ocisift.referrers(f"{mirror.host}/everything/app:1.10.0")
    assert sorted(r.descriptor.artifact_type or "" for r in sigs.referrers) == [SBOM, SIG]
    assert ocisift.referrers(f"oci-archive:{tmp_path}/regex.tar:2.0.0").referrers == []
    with tarfile.open(tmp_path / "regex.tar") as archive:
        assert "index.json" in archive.getnames()

    before_src, before_dst = len(source.log_text()), len(mirror.log_text())
    again = cli("sync", spec, "--format", "json")
    assert again.code == 3
    assert again.json()["copied"] == []  # nothing changed at the sources
    assert set(again.json()["skipped"]) >= set(out["copied"])
    src_manifests = [r for r in _requests(source.log_text()[before_src:]) if "/manifests/" in r]
    # one HEAD per tag of each unfiltered image, and nothing else for them
    unfiltered = [t for i in (images[0], images[2], images[3]) for t in i["tags"]]
    heads = sorted(r.rsplit("/", 1)[1] for r in src_manifests if r.startswith("HEAD") and "/sha256-" not in r)
    assert heads == sorted(unfiltered), src_manifests
    # with referrers, one HEAD of the fallback tag of each root (the el8 manifest is one root under its
    # three tags), and no referrer index read: nothing was attached since
    fallback_heads = [r for r in src_manifests if "/sha256-" in r]
    assert len(fallback_heads) == len(images[0]["tags"]) + len(images[3]["tags"]) + 1, src_manifests
    assert all(r.startswith("HEAD") for r in fallback_heads), src_manifests
    # the platform-filtered image reads each tag (and, once, the manifests it chooses among); the
    # missing source is asked once
    by_tag = sorted(r.rsplit("/", 1)[1] for r in src_manifests if r.startswith("GET") and "sha256:" not in r)
    assert by_tag == sorted([*images[1]["tags"], "1.0.0"]), src_manifests
    assert not [r for r in _requests(source.log_text()[before_src:]) if "/blobs/" in r]
    assert not [r for r in _requests(mirror.log_text()[before_dst:]) if r.startswith(("PUT", "POST", "PATCH"))]


def test_sync_dry_run_writes_nothing(source, mirror, tmp_path, cli):
    spec = _spec(tmp_path, f"""
images:
  - source: {source.repo}
    tags: [1.0.0, 1.2.0]
    destination: {mirror.host}/dry/app
  - source: {source.repo}
    tags: [2.0.0]
    destination: oci:{tmp_path}/never
""")
    res = cli("sync", spec, "--dry-run", "--format", "json")
    assert res.code == 0, res.err
    assert res.json()["copied"] == [f"{mirror.host}/dry/app:1.0.0", f"{mirror.host}/dry/app:1.2.0",
                                    f"oci:{tmp_path}/never:2.0.0"]
    assert not (tmp_path / "never").exists()
    assert cli("tags", f"{mirror.host}/dry/app").code == 3
    assert cli("sync", spec).code == 0
    later = cli("sync", spec, "--dry-run", "--format", "json").json()
    assert later["copied"] == [] and len(later["skipped"]) == 3


def test_a_bad_spec_is_refused_before_anything_runs_naming_its_line(source, mirror, tmp_path, cli):
    spec = _spec(tmp_path, f"""images:
  - source: {source.repo}
    tags: [1.0.0]
    destination: {mirror.host}/early/app
  - source: {source.repo}
    tags: {{semver: ">=>=1"}}
    destination: {mirror.host}/late/app
""")
    res = cli("sync", spec)
    assert res.code == 2 and "mirror.yaml:6" in res.err, res.err
    assert cli("tags", f"{mirror.host}/early/app").code == 3  # the good image did not run either


# -- the air-gapped story ------------------------------------------------------------------------------


def test_air_gapped_bundle_from_one_registry_to_another(source, tmp_path, cli):
    """README's story: sync into one archive, carry the file, copy it into the inside registry."""
    bundle = tmp_path / "bundle.tar"
    spec = _spec(tmp_path, f"""
defaults: {{referrers: true}}
images:
  - source: {source.repo}
    tags: {{semver: "^1"}}
    destination: oci-archive:{bundle}
""")
    assert cli("sync", spec).code == 0
    carried = tmp_path / "carried" / "bundle.tar"
    carried.parent.mkdir()
    shutil.copyfile(bundle, carried)  # the file is all that crosses the gap
    with run_registry(tmp_path / "inside") as inside:
        res = cli("copy", "--all-tags", "--referrers", f"oci-archive:{carried}", f"{inside.host}/acme/app",
                  "--format", "json")
        assert res.code == 0, res.err
        assert sorted(ocisift.tags(f"{inside.host}/acme/app")) == ["1.0.0", "1.10.0", "1.2.0"]
        for tag in ("1.0.0", "1.2.0", "1.10.0"):
            assert ocisift.resolve(f"{inside.host}/acme/app:{tag}").descriptor.digest == \
                ocisift.resolve(f"{source.repo}:{tag}").descriptor.digest
        want = ocisift.referrers(f"{source.repo}:1.10.0", recursive=True)
        got = ocisift.referrers(f"{inside.host}/acme/app:1.10.0", recursive=True)
        assert _referrer_digests(got.to_json()) == _referrer_digests(want.to_json()) != set()
        # and a peer reads what arrived inside
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{inside.host}/acme/app:1.10.0"], capture_output=True, timeout=60, check=True)
        assert ocisift.Digest.of(raw.stdout) == ocisift.resolve(f"{source.repo}:1.10.0").descriptor.digest


def test_sync_between_named_layout_entries_is_idempotent(tmp_path, cli):
    """Full names inside a layout and an archive, not short tags: the second run still only compares."""
    build_sample_layout(str(tmp_path / "lay"))
    spec = _spec(tmp_path, f"""
images:
  - source: oci:{tmp_path}/lay/example.com/acme/modules/redis
    tags: all
    destination: oci-archive:{tmp_path}/bundle.tar/acme/redis
  - source: oci:{tmp_path}/lay
    tags: {{semver: ">=1.0.0"}}
    destination: oci-archive:{tmp_path}/bundle.tar/acme/repo
""")
    first = cli("sync", spec, "--format", "json")
    assert first.code == 0, first.err
    assert first.json()["copied"] == [f"oci-archive:{tmp_path}/bundle.tar/docker.io/acme/redis:7.2"]
    assert first.json()["images"][1]["tags"] == []  # the sample's tags are not x.y.z versions
    packed = (tmp_path / "bundle.tar").stat().st_mtime_ns
    again = cli("sync", spec, "--format", "json")
    assert again.code == 0 and again.json()["copied"] == []
    assert again.json()["skipped"] == first.json()["copied"]
    assert (tmp_path / "bundle.tar").stat().st_mtime_ns == packed  # nothing changed: not repacked
    text = cli("sync", spec)
    assert "nothing to copy: no tag of" in text.err and "line 6" in text.err


# -- referrer-complete runs ---------------------------------------------------------------------------


def _per_tag(requests: list[str], repo: str) -> dict[str, list[str]]:
    """The manifest requests of one repository by what they name: a tag, a fallback tag, a digest."""
    out: dict[str, list[str]] = {}
    for r in requests:
        method, path = r.split(" ", 1)
        if f"/v2/{repo}/manifests/" in path:
            out.setdefault(path.rsplit("/", 1)[1], []).append(method)
    return out


def test_a_signature_attached_after_the_first_sync_arrives_with_the_second(mirror, tmp_path, cli):
    """Referrer-complete runs: a signature and an SBOM attached to images the mirror already has are
    carried by the next sync into a registry, a layout and an archive, for at most one more request per
    tag at the source; and the run after that, with nothing new, costs two requests per tag (the tag's
    HEAD and its fallback tag's HEAD) and repacks nothing."""
    build_sample_layout(str(tmp_path / "lay"))
    releases = ("1.0.0", "1.1.0", "1.2.0", "1.3.0")
    with run_registry(tmp_path / "src") as src:
        repo = f"{src.host}/acme/signed"
        for n, tag in enumerate(releases):
            ocisift.index_create(f"oci:{tmp_path}/rel{n}:{tag}", [f"oci:{tmp_path}/lay:1.2"],
                                 annotations=[f"org.opencontainers.image.version={tag}"])
            ocisift.copy(f"oci:{tmp_path}/rel{n}:{tag}", f"{repo}:{tag}")
        ocisift.push(repo, [_file(tmp_path, "old-sig.json", '{"sig": "old"}')], artifact_type=SIG,
                     subject=f"{repo}:1.1.0")
        digests = {tag: ocisift.resolve(f"{repo}:{tag}").descriptor.digest for tag in releases}
        bundle = tmp_path / "bundle.tar"
        spec = _spec(tmp_path, f"""
defaults: {{referrers: true}}
images:
  - source: {repo}
    tags: all
    destination: {mirror.host}/mirror/signed
  - source: {repo}
    tags: all
    destination: oci:{tmp_path}/mirror-layout
  - source: {repo}
    tags: all
    destination: oci-archive:{bundle}
""")
        first = cli("sync", spec, "--format", "json")
        assert first.code == 0, first.err
        destinations = (f"{mirror.host}/mirror/signed", f"oci:{tmp_path}/mirror-layout", f"oci-archive:{bundle}")
        for dst in destinations:
            assert [r.descriptor.artifact_type for r in ocisift.referrers(f"{dst}:1.1.0").referrers] == [SIG]
            assert ocisift.referrers(f"{dst}:1.0.0").referrers == []

        # attached after the first sync: a signature on an image that had none, an SBOM beside a signature
        new_sig = ocisift.push(repo, [_file(tmp_path, "sig.json", '{"sig": "new"}')], artifact_type=SIG,
                               subject=f"{repo}:1.0.0")
        sbom = ocisift.push(repo, [_file(tmp_path, "sbom.json", '{"spdx": 3}')], artifact_type=SBOM,
                            subject=f"{repo}:1.1.0")
        before_src, before_dst = len(src.log_text()), len(mirror.log_text())
        report = tmp_path / "second.jsonl"
        second = cli("sync", spec, "--format", "json", "--report", str(report))
        assert second.code == 0, second.err
        for dst in destinations:
            found = {r.descriptor.digest for r in ocisift.referrers(f"{dst}:1.0.0").referrers}
            assert found == {new_sig.descriptor.digest}, dst
            kinds = sorted(r.descriptor.artifact_type or "" for r in ocisift.referrers(f"{dst}:1.1.0").referrers)
            assert kinds == [SBOM, SIG], dst
        changed = [f"{dst}:{tag}" for dst in destinations for tag in ("1.0.0", "1.1.0")]
        assert sorted(second.json()["copied"]) == sorted(changed)
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        assert sorted((line["destination"], line["tag"]) for line in lines) == \
            sorted((dst, tag) for dst in destinations for tag in releases)  # one line per image and tag
        for line in lines:
            assert line["source"] == repo and line["exitCode"] == 0 and line["seconds"] >= 0
            assert line["digest"] == str(digests[line["tag"]])
            expected = "copied" if line["tag"] in ("1.0.0", "1.1.0") else "unchanged"
            assert line["result"] == expected, line
            assert line["referrers"] == (1 if expected == "copied" else 0), line
            assert line["requests"] == sum(line["requestsByRegistry"].values()) > 0
        asked = _per_tag(_requests(src.log_text()[before_src:]), "acme/signed")
        images = len(destinations)
        for tag in ("1.2.0", "1.3.0"):  # unchanged, nothing attached: HEAD of the tag, HEAD of its fallback tag
            assert asked.pop(tag) == ["HEAD"] * images
            assert asked.pop(f"sha256-{digests[tag].hex}") == ["HEAD"] * images
        # where something was attached: the fallback tag's HEAD, then its index read, then the new referrer
        for tag in ("1.0.0", "1.1.0"):
            assert asked.pop(tag) == ["HEAD"] * images
            assert sorted(asked.pop(f"sha256-{digests[tag].hex}")) == ["GET"] * images + ["HEAD"] * images
        for new in (new_sig.descriptor.digest, sbom.descriptor.digest):  # read, and its own referrers listed
            assert asked.pop(str(new)) == asked.pop(f"sha256-{new.hex}") == ["GET"] * images
            # and a cosign signature of it looked for, as copy --referrers carries those too (one HEAD)
            assert asked.pop(f"sha256-{new.hex}.sig") == ["HEAD"] * images
        assert asked == {}

        packed = bundle.stat().st_mtime_ns
        before_src, before_dst = len(src.log_text()), len(mirror.log_text())
        report = tmp_path / "third.jsonl"
        third = cli("sync", spec, "--format", "json", "--report", str(report))
        assert third.code == 0 and third.json()["copied"] == [], third.err
        assert bundle.stat().st_mtime_ns == packed  # nothing changed: not repacked
        src_requests = _requests(src.log_text()[before_src:])
        assert len([r for r in src_requests if "/referrers/" in r]) <= 1  # learning it has no referrers API
        per_tag = [r for r in src_requests if "/referrers/" not in r and r != "GET /v2/"]
        listing = [r for r in per_tag if "/tags/list" in r]
        assert len(listing) == images  # `tags: all`
        assert len(per_tag) - len(listing) == 2 * images * len(releases), per_tag  # 2 per tag, no more
        assert all(r.startswith("HEAD ") for r in per_tag if r not in listing), per_tag
        dst_requests = [r for r in _requests(mirror.log_text()[before_dst:]) if "/mirror/signed/" in r]
        assert len([r for r in dst_requests if "/referrers/" in r]) == 1  # learning it has no referrers API
        dst_requests = [r for r in dst_requests if "/referrers/" not in r]
        # at the mirror: the tag's HEAD, and the fallback tag's where the source has referrers
        assert sorted(dst_requests) == sorted(
            [f"HEAD /v2/mirror/signed/manifests/{tag}" for tag in releases]
            + [f"HEAD /v2/mirror/signed/manifests/sha256-{digests[tag].hex}" for tag in ("1.0.0", "1.1.0")]), \
            dst_requests
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        assert {line["result"] for line in lines} == {"unchanged"}
        # 2 at each end at most, and once in the run each end's answer that it has no referrers API
        assert sum(line["requests"] for line in lines) <= 4 * len(lines) + 2, lines


def test_a_failing_tag_does_not_stop_its_image_and_the_report_says_which(source, mirror, tmp_path, cli):
    spec = _spec(tmp_path, f"""
images:
  - source: {source.repo}
    tags: [1.0.0, no-such-tag, 1.2.0]
    destination: {mirror.host}/report/app
  - source: {source.host}/acme/missing
    tags: all
    destination: {mirror.host}/report/missing
""")
    report = tmp_path / "report.jsonl"
    res = cli("sync", spec, "--report", str(report), "--format", "json")
    assert res.code == 3, res.err  # the worst failure: not found
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    by_tag = {(line["source"], line["tag"]): line for line in lines}
    assert len(lines) == len(by_tag) == 4
    for tag in ("1.0.0", "1.2.0"):  # copied, the one between them failing
        line = by_tag[(source.repo, tag)]
        assert line["result"] == "copied" and line["exitCode"] == 0 and line["bytes"] > 0, line
        assert line["digest"] == str(ocisift.resolve(f"{source.repo}:{tag}").descriptor.digest)
    failed = by_tag[(source.repo, "no-such-tag")]
    assert failed["result"] == "failed" and failed["exitCode"] == 3 and failed["digest"] is None
    assert "no-such-tag" in failed["error"]["message"]
    image = by_tag[(f"{source.host}/acme/missing", None)]  # no tag could be chosen: one line for the image
    assert image["result"] == "failed" and image["exitCode"] == 3 and image["requests"] == 0
    out = res.json()
    assert [t["tag"] for t in out["images"][0]["failedTags"]] == ["no-such-tag"]
    assert sorted(ocisift.tags(f"{mirror.host}/report/app")) == ["1.0.0", "1.2.0"]
    text = cli("sync", spec)
    assert text.code == 3 and f"error: {source.repo}:no-such-tag (line 3)" in text.err, text.err
