"""Signed content for the trust tests: real tools' fixtures placed into stores, and stores' raw pieces.

Everything is written through the store protocols (push, tag, add_root), as a registry, layout or archive
would hold what cosign and notation write there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ocisift._core import mediatypes as mt
from ocisift._core.builders import manifest_bytes
from ocisift._core.digest import Digest
from ocisift._core.models import Descriptor, parse_document
from ocisift._core.reference import Target
from ocisift._graph.referrers import record_referrer
from ocisift._stores.base import Pusher, Reader, Tagger
from ocisift._trust.formats import COSIGN_SIMPLESIGNING, NOTARY_SIGNATURE, SIGSTORE_BUNDLE_V03, signature_tag

FIXTURES = Path(__file__).parent / "fixtures" / "trust"
COSIGN = FIXTURES / "cosign"
CONTAINERS = FIXTURES / "containers-image"
NOTATION = FIXTURES / "notation-go"
SIGSTORE_PY = FIXTURES / "sigstore-python"

# cosign's test attaches its bundle to go-containerregistry's empty.Image; these are its bytes.
GGCR_EMPTY_CONFIG = (b'{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers",'
                     b'"diff_ids":null},"config":{}}')
GGCR_EMPTY_MANIFEST = (b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                       b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":115,'
                       b'"digest":"sha256:5b943e2b943f6c81dbbd4e2eca5121f4fcc39139e3d1219d6d89bd925b77d9fe"},'
                       b'"layers":[]}')
COSIGN_IDENTITY = ("cody@soyland.com", "https://github.com/login/oauth")


def put(store: Reader, data: bytes, media_type: str, annotations: dict[str, str] | None = None,
        artifact_type: str | None = None) -> Descriptor:
    desc = Descriptor(media_type, Digest.of(data), len(data), dict(annotations or {}), None, artifact_type)
    assert isinstance(store, Pusher)
    if not store.exists(desc):
        store.push(desc, io.BytesIO(data))
    return desc


def image(store: Reader, manifest: bytes, config: bytes | None = None, *, tag: str | None = "1.0",
          media_type: str | None = None) -> Descriptor:
    """A manifest (and its config) as one named entry."""
    doc = json.loads(manifest)
    if config is not None:
        put(store, config, doc["config"]["mediaType"])
    desc = put(store, manifest, media_type or doc.get("mediaType", mt.OCI_MANIFEST))
    if tag is not None:
        assert isinstance(store, Tagger)
        store.tag(desc, tag)
    return desc


def legacy_signatures(store: Reader, subject: Descriptor, layers: list[tuple[bytes, dict[str, str]]], *,
                      media_type: str = COSIGN_SIMPLESIGNING) -> Descriptor:
    """cosign's `.sig` manifest: one payload layer per signature, signed in its annotations."""
    descs = [put(store, payload, media_type, annotations) for payload, annotations in layers]
    config = put(store, b"{}", mt.OCI_CONFIG)
    raw = manifest_bytes(config, descs)
    sig = put(store, raw, mt.OCI_MANIFEST)
    assert isinstance(store, Tagger)
    store.tag(sig, signature_tag(subject.digest))
    return sig


def containers_signature(path: Path) -> tuple[bytes, dict[str, str]]:
    """A signature as containers/image stores one (`\\0sigstore-json\\n` and JSON): payload and annotations."""
    data = path.read_bytes()
    doc = json.loads(data[data.index(b"{"):])
    import base64

    return base64.b64decode(doc["payload"]), doc["annotations"]


def referrer(store: Reader, subject: Descriptor, blob: bytes, layer_type: str, artifact_type: str, *,
             subject_override: Descriptor | None = None, annotations: dict[str, str] | None = None) -> Descriptor:
    """A referrer manifest with one layer, findable as the store finds referrers."""
    layer = put(store, blob, layer_type)
    config = put(store, b"{}", mt.OCI_EMPTY)
    raw = manifest_bytes(config, [layer], artifact_type=artifact_type, subject=subject_override or subject,
                         annotations=annotations)
    desc = put(store, raw, mt.OCI_MANIFEST, artifact_type=artifact_type)
    record_referrer(store, desc, parse_document(raw, mt.OCI_MANIFEST))
    return desc


def bundle_referrer(store: Reader, subject: Descriptor, bundle: bytes, **kw: object) -> Descriptor:
    return referrer(store, subject, bundle, SIGSTORE_BUNDLE_V03, SIGSTORE_BUNDLE_V03, **kw)  # type: ignore[arg-type]


def notation_referrer(store: Reader, subject: Descriptor, envelope: bytes, media_type: str) -> Descriptor:
    return referrer(store, subject, envelope, media_type, NOTARY_SIGNATURE)


def notation_trust(tmp: Path, *, level: str = "strict", identities: list[str] | None = None,
                   store_cert: bytes | None = None, scopes: list[str] | None = None) -> tuple[Path, Path]:
    """A trustpolicy.json and a trust store holding, by default, the signing certificate of notation-go's
    envelopes (a self-signed `CN=alpine`), taken from the JWS envelope's x5c."""
    import base64

    if store_cert is None:
        jws = json.loads((NOTATION / "jws_signature.sig").read_bytes())
        store_cert = base64.b64decode(jws["header"]["x5c"][-1])
    folder = tmp / "truststore" / "x509" / "ca" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signer.crt").write_bytes(store_cert)
    policy = {"version": "1.0", "trustPolicies": [{
        "name": "acme", "registryScopes": scopes or ["*"], "signatureVerification": {"level": level},
        "trustStores": ["ca:acme"],
        "trustedIdentities": identities or ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine"]}]}
    (tmp / "trustpolicy.json").write_text(json.dumps(policy))
    return tmp / "trustpolicy.json", tmp / "truststore"


def target(tag: str) -> Target:
    return Target(tag=tag)


def certificate(subject: str, key, issuer=None, issuer_key=None, *, ca: bool = False,  # type: ignore[no-untyped-def]
                days: tuple[int, int] = (-1, 365)):
    """A certificate for notation tests: `C=US, ST=WA, O=Acme, CN=subject`, code signing unless a CA."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer is not None else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                            crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def jws_envelope(subject: Descriptor, key, chain, *, expiry: str | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """A notation JWS envelope (ES256) over `subject`, as `notation sign` writes one."""
    import base64
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = json.dumps({"targetArtifact": {"mediaType": subject.media_type, "digest": str(subject.digest),
                                             "size": subject.size}}).encode()
    protected: dict[str, object] = {
        "alg": "ES256", "crit": ["io.cncf.notary.signingScheme"], "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if expiry is not None:
        protected["io.cncf.notary.expiry"] = expiry
        protected["crit"] = ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]
    head, body = b64url(json.dumps(protected).encode()), b64url(payload)
    r, s = utils.decode_dss_signature(key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    x5c = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]
    return json.dumps({"payload": body, "protected": head, "header": {"x5c": x5c}, "signature": b64url(signature)}).encode()
