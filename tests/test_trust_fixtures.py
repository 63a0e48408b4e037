"""Verification against signatures the real tools wrote, and against tampered copies of them.

Fixtures (tests/fixtures/trust/README.md cites each file's repository, commit and path):
cosign key-based signatures from containers/image's `signature/fixtures/dir-img-cosign-*`, cosign's
keyless bundle `pkg/cosign/testdata/oci-attestation.sigstore.json` with its trusted root, notation-go's
`internal/testdata/{jws,cose}_signature.sig` over its test layout's manifest, sigstore-python's
`test/assets/bundle_v3.txt.sigstore`, and cosign's encrypted test keys from `pkg/cosign/keys_test.go`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import ocisift
from ocisift._core.digest import Digest
from ocisift._core.trustspec import IdentityMatch
from ocisift._stores.layout import LayoutStore
from ocisift._trust.bundle import parse_bundle
from ocisift._trust.keyless import KeylessTrust
from ocisift._trust.outcome import Refused
from trusttools import (
    CONTAINERS,
    COSIGN,
    COSIGN_IDENTITY,
    GGCR_EMPTY_CONFIG,
    GGCR_EMPTY_MANIFEST,
    NOTATION,
    SIGSTORE_PY,
    bundle_referrer,
    containers_signature,
    image,
    legacy_signatures,
    notation_referrer,
    notation_trust,
)

ROOT = str(COSIGN / "trusted_root_pgi.json")
VALID = CONTAINERS / "dir-img-cosign-valid"


def _layout(tmp_path: Path) -> tuple[LayoutStore, str]:
    path = tmp_path / "signed"
    return LayoutStore.create(str(path)), f"oci:{path}"


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


# -- cosign, key-based, legacy .sig (cosign sign --key, as containers/image keeps it) ---------------------

@pytest.fixture
def cosign_signed(tmp_path: Path) -> tuple[LayoutStore, str]:
    store, ref = _layout(tmp_path)
    subject = image(store, (VALID / "manifest.json").read_bytes())
    legacy_signatures(store, subject, [containers_signature(VALID / "signature-1")])
    return store, ref


def test_cosign_key_signature_verifies(cosign_signed, cli):
    _, ref = cosign_signed
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign.pub"), "--format", "json")
    assert result.code == 0, result.err
    body = result.json()
    assert body["trusted"] and body["verifiedBy"]["kind"] == "cosign"
    assert "cosign.pub" in body["verifiedBy"]["signer"]
    assert body["digest"] == str(Digest.of((VALID / "manifest.json").read_bytes()))


def test_cosign_signature_of_another_key_is_not_trusted(cosign_signed, cli):
    _, ref = cosign_signed
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign2.pub"))
    assert result.code == 7
    assert "does not verify with" in result.err and "cosign2.pub" in result.err


def test_any_one_key_suffices(cosign_signed, cli):
    _, ref = cosign_signed
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign2.pub"),
                 "--key", str(CONTAINERS / "cosign.pub"))
    assert result.code == 0, result.err


@pytest.mark.parametrize("damage", ["payload", "signature"])
def test_tampered_cosign_signature_is_not_trusted(tmp_path, cli, damage):
    store, ref = _layout(tmp_path)
    subject = image(store, (VALID / "manifest.json").read_bytes())
    payload, annotations = containers_signature(VALID / "signature-1")
    if damage == "payload":
        payload = payload.replace(b'"optional":null', b'"optional":{}')
    else:
        sig = base64.b64decode(annotations["dev.cosignproject.cosign/signature"])
        annotations = {**annotations, "dev.cosignproject.cosign/signature": base64.b64encode(_flip(sig, 20)).decode()}
    legacy_signatures(store, subject, [(payload, annotations)])
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign.pub"), "--format", "json")
    assert result.code == 7
    tried = result.json()["error"]["candidates"]
    assert len(tried) == 1 and not tried[0]["verified"] and "does not verify" in tried[0]["reason"]


def test_replayed_signature_of_another_digest_is_not_trusted(tmp_path, cli):
    """The valid image's signature on other content (as containers/image's manifest-digest-error image)."""
    store, ref = _layout(tmp_path)
    subject = image(store, (NOTATION / "oci-layout" / "manifest-19dbd2e4.json").read_bytes())
    legacy_signatures(store, subject, [containers_signature(VALID / "signature-1")])
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign.pub"))
    assert result.code == 7
    assert "a signature of other content" in result.err


def test_a_layer_that_is_no_signature_is_not_trusted(tmp_path, cli):
    store, ref = _layout(tmp_path)
    folder = CONTAINERS / "dir-img-cosign-other-attachment"
    subject = image(store, (VALID / "manifest.json").read_bytes())
    payload, annotations = containers_signature(folder / "signature-1")
    legacy_signatures(store, subject, [(payload, annotations)], media_type="text/plain")
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign.pub"))
    assert result.code == 7 and "not a simple-signing payload" in result.err


def test_second_of_two_signatures_verifies(tmp_path, cli):
    """dir-img-cosign-valid-2: two signatures; a foreign one first must not hide the good one."""
    store, ref = _layout(tmp_path)
    folder = CONTAINERS / "dir-img-cosign-valid-2"
    subject = image(store, (VALID / "manifest.json").read_bytes())
    other = containers_signature(folder / "signature-2")
    legacy_signatures(store, subject, [(b"{}", {"dev.cosignproject.cosign/signature": "AAAA"}), other])
    result = cli("verify", f"{ref}:1.0", "--key", str(CONTAINERS / "cosign.pub"), "--format", "json")
    assert result.code == 0, result.out
    assert [a["verified"] for a in result.json()["signatures"]] == [False, True]


def test_match_reference_compares_the_signed_repository(tmp_path, cli):
    path = tmp_path / "named"
    store = LayoutStore.create(str(path))
    subject = image(store, (VALID / "manifest.json").read_bytes(), tag=None)
    store.tag(subject, "192.168.64.2:5000/cosign-signed-single-sample:1.0")
    store.tag(subject, "example.com/someone/else:1.0")
    legacy_signatures(store, subject, [containers_signature(VALID / "signature-1")])
    key = str(CONTAINERS / "cosign.pub")
    good = cli("verify", f"oci:{path}/192.168.64.2:5000/cosign-signed-single-sample:1.0", "--key", key,
               "--match-reference")
    assert good.code == 0, good.err
    bad = cli("verify", f"oci:{path}/example.com/someone/else:1.0", "--key", key, "--match-reference")
    assert bad.code == 7 and "not example.com/someone/else" in bad.err


# -- cosign keyless, sigstore bundle v0.3 referrer (cosign's own test data) ---------------------------------

@pytest.fixture
def keyless_signed(tmp_path: Path) -> tuple[LayoutStore, str]:
    store, ref = _layout(tmp_path)
    subject = image(store, GGCR_EMPTY_MANIFEST, GGCR_EMPTY_CONFIG)
    assert str(subject.digest) == "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    bundle_referrer(store, subject, (COSIGN / "oci-attestation.sigstore.json").read_bytes())
    return store, ref


def _keyless_args(subject: str = COSIGN_IDENTITY[0], issuer: str = COSIGN_IDENTITY[1], root: str = ROOT) -> list[str]:
    return ["--certificate-identity", subject, "--certificate-oidc-issuer", issuer, "--trusted-root", root]


def test_keyless_bundle_verifies_offline(keyless_signed, cli):
    _, ref = keyless_signed
    result = cli("verify", f"{ref}:1.0", *_keyless_args(), "--format", "json")
    assert result.code == 0, result.out + result.err
    signer = result.json()["verifiedBy"]
    assert signer["kind"] == "sigstore bundle" and "cody@soyland.com" in signer["signer"]


def test_match_reference_compares_a_bundles_subject_name(keyless_signed, cli):
    """cosign names the statement's subject `host/repository`: --match-reference holds a bundle to it."""
    store, ref = keyless_signed
    subject = ocisift.resolve(f"{ref}:1.0").root
    store.tag(subject, "127.0.0.1:60943/repo:1.0")
    store.tag(subject, "127.0.0.1:60943/other:1.0")
    good = cli("verify", f"{ref}/127.0.0.1:60943/repo:1.0", *_keyless_args(), "--match-reference")
    assert good.code == 0, good.err
    bad = cli("verify", f"{ref}/127.0.0.1:60943/other:1.0", *_keyless_args(), "--match-reference")
    assert bad.code == 7 and "names 127.0.0.1:60943/repo, not 127.0.0.1:60943/other" in bad.err, bad.err


def test_keyless_by_patterns_as_flux_matches(keyless_signed, cli):
    _, ref = keyless_signed
    result = cli("verify", f"{ref}:1.0", "--certificate-identity-regexp", r"^cody@soyland\.com$",
                 "--certificate-oidc-issuer-regexp", r"^https://github\.com/", "--trusted-root", ROOT)
    assert result.code == 0, result.err


@pytest.mark.parametrize("args", [
    _keyless_args(subject="someone@else.example"),
    _keyless_args(issuer="https://token.actions.githubusercontent.com"),
    _keyless_args(root=str(SIGSTORE_PY / "staging_trusted_root.json")),  # a foreign root: the chain ends elsewhere
], ids=["identity", "issuer", "foreign-root"])
def test_keyless_bundle_refused_for_another_identity_or_root(keyless_signed, cli, args):
    _, ref = keyless_signed
    result = cli("verify", f"{ref}:1.0", *args)
    assert result.code == 7, result.err
    assert "keyless verification" in result.err


def _tampered_bundle(change) -> bytes:  # type: ignore[no-untyped-def]
    doc = json.loads((COSIGN / "oci-attestation.sigstore.json").read_bytes())
    change(doc)
    return json.dumps(doc).encode()


def _swap_sig(doc: dict) -> None:
    sig = base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(_flip(sig, 10)).decode()


def _other_log_entry(doc: dict) -> None:
    """The log entry of another artifact (sigstore-python's bundle), with its own valid proofs."""
    other = json.loads((SIGSTORE_PY / "bundle_v3.txt.sigstore").read_bytes())
    doc["verificationMaterial"]["tlogEntries"] = other["verificationMaterial"]["tlogEntries"]


def _later_time(doc: dict) -> None:
    """A log time when the short-lived certificate had expired: the SET no longer signs it."""
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 86400)


@pytest.mark.parametrize("change", [_swap_sig, _other_log_entry, _later_time], ids=["signature", "log-entry", "time"])
def test_tampered_keyless_bundle_is_not_trusted(tmp_path, cli, change):
    store, ref = _layout(tmp_path)
    subject = image(store, GGCR_EMPTY_MANIFEST, GGCR_EMPTY_CONFIG)
    bundle_referrer(store, subject, _tampered_bundle(change))
    result = cli("verify", f"{ref}:1.0", *_keyless_args())
    assert result.code == 7, result.err


def test_keyless_bundle_of_another_digest_is_not_trusted(tmp_path, cli):
    """The real bundle attached to other content: its statement names the empty image, not this one."""
    store, ref = _layout(tmp_path)
    subject = image(store, (VALID / "manifest.json").read_bytes())
    bundle_referrer(store, subject, (COSIGN / "oci-attestation.sigstore.json").read_bytes())
    result = cli("verify", f"{ref}:1.0", *_keyless_args())
    assert result.code == 7 and "a signature of other content" in result.err


def test_sigstore_python_message_signature_bundle():
    """sigstore-python's own v0.3 bundle (a message signature over bundle_v3.txt, staging instance)."""
    raw = (SIGSTORE_PY / "bundle_v3.txt.sigstore").read_bytes()
    digest = Digest.of((SIGSTORE_PY / "bundle_v3.txt").read_bytes())
    trust = KeylessTrust(str(SIGSTORE_PY / "staging_trusted_root.json"),
                         [IdentityMatch(subject="william@yossarian.net", issuer="https://github.com/login/oauth")])
    signer, what = trust.check(parse_bundle(raw), digest)
    assert "william@yossarian.net" in signer and what == "message signature"
    with pytest.raises(Refused):
        trust.check(parse_bundle(raw), Digest.of(b"another artifact"))


# -- notation (notation-go's JWS and COSE envelopes) --------------------------------------------------------

@pytest.fixture
def notation_signed(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(media_type: str, envelope: bytes | None = None) -> str:
        store, ref = _layout(tmp_path / media_type.replace("/", "-"))
        subject = image(store, (NOTATION / "oci-layout" / "manifest-19dbd2e4.json").read_bytes(),
                        (NOTATION / "oci-layout" / "config-572996c3.json").read_bytes())
        name = "jws_signature.sig" if media_type == "application/jose+json" else "cose_signature.sig"
        notation_referrer(store, subject, envelope or (NOTATION / name).read_bytes(), media_type)
        return f"{ref}:1.0"

    return make


ENVELOPES = ["application/jose+json", "application/cose"]


@pytest.mark.parametrize("media_type", ENVELOPES)
def test_notation_envelope_verifies(notation_signed, tmp_path, cli, media_type):
    policy, store = notation_trust(tmp_path / "trust")
    result = cli("verify", notation_signed(media_type), "--trust-policy", str(policy), "--trust-store", str(store),
                 "--format", "json")
    assert result.code == 0, result.out + result.err
    assert "CN=alpine" in result.json()["verifiedBy"]["signer"]


@pytest.mark.parametrize("media_type", ENVELOPES)
def test_tampered_notation_envelope_is_not_trusted(notation_signed, tmp_path, cli, media_type):
    name = "jws_signature.sig" if media_type == "application/jose+json" else "cose_signature.sig"
    raw = (NOTATION / name).read_bytes()
    tampered = _flip(raw, len(raw) - 40)
    policy, store = notation_trust(tmp_path / "trust")
    result = cli("verify", notation_signed(media_type, tampered), "--trust-policy", str(policy),
                 "--trust-store", str(store))
    assert result.code == 7, result.err


@pytest.mark.parametrize("media_type", ENVELOPES)
def test_notation_foreign_store_and_identity_refused_strict_logged_in_audit(notation_signed, tmp_path, cli,
                                                                            media_type):
    ref = notation_signed(media_type)
    foreign = (NOTATION / "NotationTestRoot.pem").read_bytes()
    policy, store = notation_trust(tmp_path / "foreign", store_cert=foreign)
    refused = cli("verify", ref, "--trust-policy", str(policy), "--trust-store", str(store))
    assert refused.code == 7 and "not in trust store" in refused.err
    policy, store = notation_trust(tmp_path / "who", identities=["x509.subject: C=US, ST=WA, O=Other"])
    refused = cli("verify", ref, "--trust-policy", str(policy), "--trust-store", str(store))
    assert refused.code == 7 and "not a trusted identity" in refused.err
    policy, store = notation_trust(tmp_path / "audit", store_cert=foreign, level="audit")
    logged = cli("verify", ref, "--trust-policy", str(policy), "--trust-store", str(store), "--format", "json")
    assert logged.code == 0, logged.out
    assert "logged only" in " ".join(logged.json()["verifiedBy"]["notes"])


def test_notation_envelope_of_another_digest_is_not_trusted(tmp_path, cli):
    store, ref = _layout(tmp_path)
    subject = image(store, (VALID / "manifest.json").read_bytes())
    notation_referrer(store, subject, (NOTATION / "jws_signature.sig").read_bytes(), "application/jose+json")
    policy, trust_store = notation_trust(tmp_path / "trust")
    result = cli("verify", f"{ref}:1.0", "--trust-policy", str(policy), "--trust-store", str(trust_store))
    assert result.code == 7 and "a signature of other content" in result.err



def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_SCHEME = {"crit": ["io.cncf.notary.signingScheme"], "io.cncf.notary.signingScheme": "notary.x509"}


def _hostile_jws(protected: dict[str, object], payload: object = "e30") -> bytes:
    return json.dumps({"payload": payload, "protected": _b64url(json.dumps(protected).encode()),
                       "header": {"x5c": []}, "signature": "AAAA"}).encode()


def _hostile_cose(protected: dict[object, object]) -> bytes:
    import cbor2

    return cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps(protected), {}, b"{}", b"\0" * 64]))


def _hostile_certificates() -> dict[str, bytes]:
    """Envelopes signed by the attacker's own certificate, crafted where cryptography parses lazily."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtensionOID

    from trusttools import certificate, jws_envelope

    key = ec.generate_private_key(ec.SECP256R1())
    good = certificate("attacker", key)
    malformed = (x509.CertificateBuilder().subject_name(good.subject).issuer_name(good.subject)
                 .public_key(key.public_key()).serial_number(1)
                 .not_valid_before(good.not_valid_before_utc).not_valid_after(good.not_valid_after_utc)
                 .add_extension(x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, b"\x05\x00"), critical=True)
                 .sign(key, hashes.SHA256()))
    der = good.public_bytes(serialization.Encoding.DER)  # id-ecPublicKey (1.2.840.10045.2.1) made 2.9: unknown
    unknown = x509.load_der_x509_certificate(der.replace(bytes.fromhex("06072a8648ce3d0201"),
                                                         bytes.fromhex("06072a8648ce3d0209")))
    subject = _notation_subject_descriptor()
    return {"malformed key usage": jws_envelope(subject, key, [malformed]),
            "unknown key algorithm": jws_envelope(subject, key, [unknown])}


def _notation_subject_descriptor():  # type: ignore[no-untyped-def]
    from ocisift._core import mediatypes as mt
    from ocisift._core.models import Descriptor

    raw = (NOTATION / "oci-layout" / "manifest-19dbd2e4.json").read_bytes()
    return Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw))


HOSTILE_ENVELOPES = {
    "JWS alg is a list": ("application/jose+json", lambda: _hostile_jws({"alg": ["ES256"]})),
    "JWS crit holds a list": ("application/jose+json", lambda: _hostile_jws(
        {"alg": "ES256", **_SCHEME, "crit": ["io.cncf.notary.signingScheme", []]})),
    "JWS signing time 1e300": ("application/jose+json", lambda: _hostile_jws(
        {"alg": "ES256", **_SCHEME, "io.cncf.notary.signingTime": 1e300})),
    "JWS signing time 10**20": ("application/jose+json", lambda: _hostile_jws(
        {"alg": "ES256", **_SCHEME, "io.cncf.notary.signingTime": 10**20})),
    "JWS payload null": ("application/jose+json", lambda: _hostile_jws({"alg": "ES256", **_SCHEME}, None)),
    "COSE alg is a list": ("application/cose", lambda: _hostile_cose({1: [-7]})),
    "COSE crit holds a map": ("application/cose", lambda: _hostile_cose(
        {1: -7, 2: ["io.cncf.notary.signingScheme", {}], "io.cncf.notary.signingScheme": "notary.x509"})),
    "COSE signing time 10**20": ("application/cose", lambda: _hostile_cose(
        {1: -7, 2: ["io.cncf.notary.signingScheme"], "io.cncf.notary.signingScheme": "notary.x509",
         "io.cncf.notary.signingTime": 10**20})),
    "certificate with a malformed key usage": (
        "application/jose+json", lambda: _hostile_certificates()["malformed key usage"]),
    "certificate of an unknown key algorithm": (
        "application/jose+json", lambda: _hostile_certificates()["unknown key algorithm"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ENVELOPES))
def test_hostile_notation_envelope_is_refused_and_the_next_one_tried(tmp_path, cli, case):
    """Anyone who may push can attach a referrer: a crafted envelope is one refused signature (exit 7 alone),
    never an internal error, and a valid envelope listed after it still verifies."""
    media_type, make = HOSTILE_ENVELOPES[case]
    store, ref = _layout(tmp_path)
    subject = image(store, (NOTATION / "oci-layout" / "manifest-19dbd2e4.json").read_bytes(),
                    (NOTATION / "oci-layout" / "config-572996c3.json").read_bytes())
    assert subject == _notation_subject_descriptor()
    notation_referrer(store, subject, make(), media_type)
    policy, trust_store = notation_trust(tmp_path / "trust")
    args = ["verify", f"{ref}:1.0", "--trust-policy", str(policy), "--trust-store", str(trust_store)]
    alone = cli(*args, "--format", "json")
    assert alone.code == 7, alone.out
    (attempt,) = alone.json()["error"]["candidates"]
    assert attempt["verified"] is False and attempt["reason"], attempt
    notation_referrer(store, subject, (NOTATION / "jws_signature.sig").read_bytes(), "application/jose+json")
    both = cli(*args, "--format", "json")
    assert both.code == 0, both.out
    assert "CN=alpine" in both.json()["verifiedBy"]["signer"]

# -- cosign's encrypted keys ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sigstore.key", "cosign-label.key"])
def test_cosign_encrypted_test_keys_sign_what_verifies(tmp_path, cli, monkeypatch, name):
    """cosign's keys_test.go keys (password `hello`): our signature verifies with the public key they hold."""
    from ocisift._trust.cosignkey import load_private_key
    from ocisift._trust.keys import public_pem

    key = load_private_key(str(COSIGN / name), b"hello")
    (tmp_path / "key.pub").write_bytes(public_pem(key.public_key()))
    store, ref = _layout(tmp_path)
    image(store, (VALID / "manifest.json").read_bytes())
    monkeypatch.setenv("COSIGN_PASSWORD", "wrong")
    assert cli("sign", f"{ref}:1.0", "--key", str(COSIGN / name)).code == 2
    monkeypatch.setenv("COSIGN_PASSWORD", "hello")
    assert cli("sign", f"{ref}:1.0", "--key", str(COSIGN / name)).code == 0
    assert cli("verify", f"{ref}:1.0", "--key", str(tmp_path / "key.pub")).code == 0
    assert ocisift.verify(f"{ref}:1.0", ocisift.VerifySpec(keys=(str(tmp_path / "key.pub"),))).trusted
