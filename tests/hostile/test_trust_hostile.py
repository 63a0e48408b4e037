"""Hostile signatures: each refused with a clear exit code (7, or 5 for the content itself), in bounded time and
memory, the output untouched, never "internal error" and never a success."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocisift._core import mediatypes as mt
from ocisift._core.builders import build_index, manifest_bytes
from ocisift._core.digest import Digest
from ocisift._core.models import Descriptor
from ocisift._stores.layout import LayoutStore
from ocisift._trust.cosignkey import sign
from ocisift._trust.formats import COSIGN_SIMPLESIGNING, SIGSTORE_BUNDLE_V03, signature_tag
from ocisift._trust.keys import public_pem
from ocisift._trust.simplesigning import build_payload
from trusttools import (
    bundle_referrer,
    certificate,
    image,
    jws_envelope,
    legacy_signatures,
    notation_referrer,
    notation_trust,
    put,
    referrer,
)

LAYER = b"the content\n"
LAYER_DESC = Descriptor("application/x.text", Digest.of(LAYER), len(LAYER), {mt.ANNOTATION_TITLE: "content.txt"})
MANIFEST = manifest_bytes(Descriptor(mt.OCI_EMPTY, Digest.of(b"{}"), 2), [LAYER_DESC], artifact_type="application/x.app")


@pytest.fixture
def signer(tmp_path: Path):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "cosign.pub").write_bytes(public_pem(key.public_key()))
    return key, str(tmp_path / "cosign.pub")


@pytest.fixture
def signed(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = LayoutStore.create(str(tmp_path / "arena" / "store"))
    put(store, LAYER, LAYER_DESC.media_type)
    put(store, b"{}", mt.OCI_EMPTY)
    subject = image(store, MANIFEST)
    return store, subject, f"oci:{tmp_path}/arena/store:1.0"


def _signed_layer(key, subject: Descriptor, **over: str) -> tuple[bytes, dict[str, str]]:  # type: ignore[no-untyped-def]
    payload = build_payload(subject.digest, "example.com/acme/app")
    if "type" in over:
        payload = payload.replace(b"cosign container image signature", over["type"].encode())
    return payload, {"dev.cosignproject.cosign/signature": base64.b64encode(sign(key, payload)).decode()}


def _pull_refused(arena, ref: str, pub: str, code: int = 7, *extra: str):  # type: ignore[no-untyped-def]
    result = arena.check(arena.pull(ref, "copy", "--verify-key", pub, *extra), code)
    assert not arena.out.exists()
    return result


def test_replay_of_another_digests_signature(arena, signed, signer):
    store, subject, ref = signed
    key, pub = signer
    other = image(store, manifest_bytes(Descriptor(mt.OCI_EMPTY, Digest.of(b"{}"), 2), [], artifact_type="x/other"),
                  tag="other")
    legacy_signatures(store, subject, [_signed_layer(key, other)])  # other's valid signature, under subject's tag
    result = _pull_refused(arena, ref, pub)
    assert "a signature of other content" in result.message


def test_right_digest_under_the_wrong_critical_type(arena, signed, signer):
    store, subject, ref = signed
    key, pub = signer
    legacy_signatures(store, subject, [_signed_layer(key, subject, type="cosign container image attestation")])
    assert "critical.type" in _pull_refused(arena, ref, pub).message


@pytest.mark.parametrize("other", ["ed25519", "rsa", "p384"])
def test_key_of_another_algorithm(arena, signed, signer, tmp_path, other):
    store, subject, ref = signed
    key, _ = signer
    legacy_signatures(store, subject, [_signed_layer(key, subject)])
    foreign = {"ed25519": ed25519.Ed25519PrivateKey.generate,
               "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
               "p384": lambda: ec.generate_private_key(ec.SECP384R1())}[other]()
    (tmp_path / "other.pub").write_bytes(public_pem(foreign.public_key()))
    assert "does not verify" in _pull_refused(arena, ref, str(tmp_path / "other.pub")).message


def test_signature_annotation_that_is_not_base64(arena, signed, signer):
    store, subject, ref = signed
    payload, _ = _signed_layer(signer[0], subject)
    legacy_signatures(store, subject, [(payload, {"dev.cosignproject.cosign/signature": "not base64 at all!"})])
    assert "not base64" in _pull_refused(arena, ref, signer[1]).message


def test_sig_tag_that_is_an_index(arena, signed, signer):
    store, subject, ref = signed
    raw = build_index([subject])
    desc = put(store, raw, mt.OCI_INDEX)
    store.tag(desc, signature_tag(subject.digest))
    assert "names an index" in _pull_refused(arena, ref, signer[1]).message


def test_signature_manifest_of_100000_layers(arena, signed, signer):
    """Over the 4 MiB a manifest may have: refused as it is read, and the verdict is still not trusted."""
    store, subject, ref = signed
    payload, annotations = _signed_layer(signer[0], subject)
    layer = put(store, payload, COSIGN_SIMPLESIGNING, annotations)
    raw = manifest_bytes(put(store, b"{}", mt.OCI_CONFIG), [layer] * 100_000)
    desc = put(store, raw, mt.OCI_MANIFEST)
    store.tag(desc, signature_tag(subject.digest))
    assert "over the" in _pull_refused(arena, ref, signer[1]).message


def test_signature_manifest_of_15000_bad_layers_tries_a_bounded_number(arena, signed, signer):
    store, subject, ref = signed
    layer = put(store, b'{"critical":{}}', COSIGN_SIMPLESIGNING, {"dev.cosignproject.cosign/signature": "AAAA"})
    raw = manifest_bytes(put(store, b"{}", mt.OCI_CONFIG), [layer] * 15_000)
    assert len(raw) < 4 << 20
    desc = put(store, raw, mt.OCI_MANIFEST)
    store.tag(desc, signature_tag(subject.digest))
    result = _pull_refused(arena, ref, signer[1], 7, "--format", "json")
    tried = result.json()["error"]["candidates"]
    assert len(tried) == 65 and "more layers not tried" in tried[-1]["reason"]


def test_bundle_of_one_gibibyte_is_not_read(arena, signed, signer, tmp_path):
    """A bundle layer of 1 GiB (a real, sparse blob of that digest): refused by its size before a byte is read."""
    store, subject, ref = signed
    size = 1 << 30
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        digest.update(zeros)
    blob = tmp_path / "arena" / "store" / "blobs" / "sha256" / digest.hexdigest()
    with open(blob, "wb") as fh:
        fh.truncate(size)
    layer = Descriptor(SIGSTORE_BUNDLE_V03, Digest("sha256", digest.hexdigest()), size)
    config = put(store, b"{}", mt.OCI_EMPTY)
    raw = manifest_bytes(config, [layer], artifact_type=SIGSTORE_BUNDLE_V03, subject=subject)
    desc = put(store, raw, mt.OCI_MANIFEST, artifact_type=SIGSTORE_BUNDLE_V03)
    from ocisift._core.models import parse_document
    from ocisift._graph.referrers import record_referrer

    record_referrer(store, desc, parse_document(raw, mt.OCI_MANIFEST))
    result = _pull_refused(arena, ref, signer[1])
    assert "not read" in result.message and result.rss_mib < 100


def test_two_hundred_garbage_bundle_referrers(arena, signed, signer):
    store, subject, ref = signed
    for n in range(200):
        bundle_referrer(store, subject, json.dumps({"mediaType": SIGSTORE_BUNDLE_V03, "n": n,
                                                    "verificationMaterial": {"publicKey": {}},
                                                    "dsseEnvelope": {"payload": "%%%"}}).encode())
    tried = _pull_refused(arena, ref, signer[1], 7, "--format", "json").json()["error"]["candidates"]
    assert len(tried) == 65 and "more referrers not tried" in tried[-1]["reason"]


@pytest.mark.parametrize("blob", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting
    b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"x":['
    + b"0," * 300_000 + b"0]}",  # values
    b"\xff\xfe not json",
], ids=["deep", "wide", "binary"])
def test_malformed_bundles(arena, signed, signer, blob):
    store, subject, ref = signed
    bundle_referrer(store, subject, blob)
    _pull_refused(arena, ref, signer[1])


@pytest.mark.parametrize("blob", [
    bytes([0xD2, 0x84]) + bytes([0x5B]) + (2**63).to_bytes(8, "big"),  # COSE_Sign1 claiming an 8 EiB string
    bytes([0x9F]) * 50_000,  # indefinite arrays nested 50,000 deep
    b"\xd8\x12" * 10_000,  # tags on tags
], ids=["huge-length", "deep", "tags"])
def test_malformed_cose_envelopes(arena, signed, tmp_path, blob):
    store, subject, ref = signed
    notation_referrer(store, subject, blob, "application/cose")
    policy, trust = notation_trust(tmp_path / "trust")
    arena.check(arena.run(["verify", ref, "--trust-policy", str(policy), "--trust-store", str(trust),
                           "--format", "json"]), 7)


def _ca_and_leaf(days: tuple[int, int] = (-1, 365)):  # type: ignore[no-untyped-def]
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Acme Root", ca_key, ca=True, days=(-10, 3650))
    return ca, leaf_key, certificate("signer", leaf_key, ca, ca_key, days=days)


@pytest.mark.parametrize("case", ["expired-certificate", "foreign-root", "expired-signature", "long-chain"])
def test_notation_certificates_and_expiry(arena, signed, tmp_path, case):
    store, subject, ref = signed
    ca, leaf_key, leaf = _ca_and_leaf((-30, -1) if case == "expired-certificate" else (-1, 365))
    chain = [leaf, ca]
    expiry = "2001-01-01T00:00:00Z" if case == "expired-signature" else None
    if case == "long-chain":
        chain = [leaf] + [ca] * 20
    notation_referrer(store, subject, jws_envelope(subject, leaf_key, chain, expiry=expiry), "application/jose+json")
    trusted = ca if case != "foreign-root" else _ca_and_leaf()[0]
    policy, trust = notation_trust(tmp_path / "trust", store_cert=trusted.public_bytes(serialization.Encoding.PEM),
                                   identities=["x509.subject: C=US, ST=WA, O=Acme, CN=signer"])
    result = arena.check(arena.run(["verify", ref, "--trust-policy", str(policy), "--trust-store", str(trust),
                                    "--format", "json"]), 7)
    words = {"expired-certificate": "not valid now", "foreign-root": "not in trust store",
             "expired-signature": "expired", "long-chain": "a chain of 21"}[case]
    assert words in result.message


def test_notation_generated_chain_verifies(arena, signed, tmp_path):
    """The same construction, untampered, verifies: the refusals above are for what they say."""
    store, subject, ref = signed
    ca, leaf_key, leaf = _ca_and_leaf()
    notation_referrer(store, subject, jws_envelope(subject, leaf_key, [leaf, ca]), "application/jose+json")
    policy, trust = notation_trust(tmp_path / "trust", store_cert=ca.public_bytes(serialization.Encoding.PEM),
                                   identities=["x509.subject: C=US, ST=WA, O=Acme, CN=signer"])
    arena.check(arena.run(["verify", ref, "--trust-policy", str(policy), "--trust-store", str(trust)]), 0)


def test_encrypted_key_asking_for_unbounded_scrypt_work(arena, signed, tmp_path):
    doc = {"kdf": {"name": "scrypt", "params": {"N": 2**30, "r": 8, "p": 1}, "salt": base64.b64encode(b"s").decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(bytes(24)).decode()},
           "ciphertext": base64.b64encode(b"x" * 64).decode()}
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    (tmp_path / "huge.key").write_text(f"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}\n"
                                       "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    os.environ.setdefault("COSIGN_PASSWORD", "x")
    _, _, ref = signed
    result = arena.check(arena.run(["sign", ref, "--key", str(tmp_path / "huge.key"), "--format", "json"]), 2)
    assert "out of bounds" in result.message


def test_bundle_referrer_whose_subject_is_another(arena, signed, signer):
    store, subject, ref = signed
    other = image(store, MANIFEST.replace(b"x.app", b"x.oth"), tag="other")
    planted = referrer(store, subject, b"{}", SIGSTORE_BUNDLE_V03, SIGSTORE_BUNDLE_V03, subject_override=other)
    # listed under the subject by a fallback index (anyone can push one), yet its own subject is another manifest
    fallback = put(store, build_index([planted]), mt.OCI_INDEX)
    store.tag(fallback, f"sha256-{subject.digest.hex}")
    assert "subject is" in _pull_refused(arena, ref, signer[1]).message
