"""Trust end to end: sign then verify on a registry, a layout and an archive, carried by copy --referrers
between them; pull, copy and sync refusing what no signature vouches for, with nothing written; policy
files per scope; the Python API. The registry is a real CNCF distribution (2.8: no referrers API, so
bundle referrers live under the fallback tag, which ocisift writes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import ocisift
from ocisift import Selector
from ocisift._core.trustspec import VerifySpec
from ocisift._demo import build_sample_layout
from ocisift._stores.layout import LayoutStore
from ocisift._trust.cosignkey import encrypt_private_key
from ocisift._trust.keys import public_pem
from registry import run_registry
from trusttools import (
    COSIGN,
    COSIGN_IDENTITY,
    GGCR_EMPTY_CONFIG,
    GGCR_EMPTY_MANIFEST,
    bundle_referrer,
    image,
    referrer,
)

PASSWORD = "correct horse"


def _keypair(folder: Path, name: str, key) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.key").write_bytes(encrypt_private_key(key, PASSWORD.encode(), {"N": 1024, "r": 8, "p": 1}))
    (folder / f"{name}.pub").write_bytes(public_pem(key.public_key()))
    return str(folder / f"{name}.key"), str(folder / f"{name}.pub")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("keys")
    return {
        "p256": _keypair(folder, "p256", ec.generate_private_key(ec.SECP256R1())),
        "p384": _keypair(folder, "p384", ec.generate_private_key(ec.SECP384R1())),
        "rsa": _keypair(folder, "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ed25519": _keypair(folder, "ed25519", ed25519.Ed25519PrivateKey.generate()),
    }


@pytest.fixture
def registry(tmp_path):  # type: ignore[no-untyped-def]
    with run_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture(autouse=True)
def password(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)


def _app(tmp_path: Path, text: str = "hello") -> str:
    (tmp_path / "app.yaml").write_text(text)
    return str(tmp_path / "app.yaml")


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa", "ed25519"])
@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_sign_then_verify_survives_copy_referrers_between_stores(tmp_path, registry, keys, cli, kind, bundle):
    private, public = keys[kind]
    repo = f"{registry.host}/acme/app"
    ocisift.push(f"{repo}:1.0", [_app(tmp_path)])
    signed = cli("sign", f"{repo}:1.0", "--key", private, *(["--bundle"] if bundle else []), "--format", "json")
    assert signed.code == 0, signed.err
    assert (signed.json()["tag"] is None) == bundle
    layout, archive = f"oci:{tmp_path}/mirror", f"oci-archive:{tmp_path}/bundle.tar"
    for ref in (f"{repo}:1.0", f"{layout}:1.0", f"{archive}:1.0", f"{registry.host}/copied/app:1.0"):
        if ref != f"{repo}:1.0":
            src = f"{repo}:1.0" if ref.startswith(layout) else f"{layout}:1.0" if ref.startswith(archive) \
                else f"{archive}:1.0"
            copied = cli("copy", "--referrers", src, ref)
            assert copied.code == 0, copied.err
        verified = cli("verify", ref, "--key", public, "--format", "json")
        assert verified.code == 0, (ref, verified.out, verified.err)
        assert verified.json()["verifiedBy"]["kind"] == ("sigstore bundle" if bundle else "cosign")
        other = keys["p256" if kind != "p256" else "rsa"][1]
        assert cli("verify", ref, "--key", other).code == 7


def test_pull_verifies_then_pulls_that_digest_and_refuses_with_nothing_written(tmp_path, registry, keys, cli):
    private, public = keys["p256"]
    repo = f"{registry.host}/acme/app"
    pushed = ocisift.push(f"{repo}:1.0", [_app(tmp_path)])
    ocisift.sign(f"{repo}:1.0", private)
    result = cli("pull", f"{repo}:1.0", "-o", str(tmp_path / "out"), "--verify-key", public, "--format", "json")
    assert result.code == 0, result.err
    body = result.json()
    assert body["verification"]["digest"] == body["digest"] == str(pushed.descriptor.digest)
    assert (tmp_path / "out" / "app.yaml").read_text() == "hello"
    refused = cli("pull", f"{repo}:1.0", "-o", str(tmp_path / "refused"), "--verify-key", keys["rsa"][1])
    assert refused.code == 7 and "not trusted" in refused.err
    assert not (tmp_path / "refused").exists()
    unsigned = ocisift.push(f"{repo}:2.0", [_app(tmp_path, "unsigned")])
    assert unsigned.descriptor.digest != pushed.descriptor.digest
    nothing = cli("pull", f"{repo}:2.0", "-o", str(tmp_path / "unsigned"), "--verify-key", public)
    assert nothing.code == 7 and "no signature of" in nothing.err
    assert not (tmp_path / "unsigned").exists()


def test_a_signed_index_vouches_for_the_platform_pulled(tmp_path, keys, cli):
    build_sample_layout(str(tmp_path / "sample"))
    ref = f"oci:{tmp_path}/sample:1.2"
    ocisift.sign(ref, keys["p256"][0])
    out = cli("pull", ref, "--platform", "linux/arm64:el9", "-o", str(tmp_path / "out"),
              "--verify-key", keys["p256"][1], "--format", "json")
    assert out.code == 0, out.err
    body = out.json()
    assert body["verification"]["digest"] == body["root"] != body["digest"]


@pytest.mark.parametrize("command", ["pull", "verify"])
def test_a_referrer_is_vouched_for_by_its_own_signature_never_its_subjects(tmp_path, keys, cli, command):
    """Anyone who may push can attach an artifact to a signed image: the image's signature says nothing of it."""
    build_sample_layout(str(tmp_path / "sample"))
    ref = f"oci:{tmp_path}/sample:1.2"
    ocisift.sign(ref, keys["p256"][0])
    store = LayoutStore(str(tmp_path / "sample"))
    root = ocisift.resolve(ref).root
    attached = referrer(store, root, b"#!/bin/sh\necho attached\n", "application/x-payload", "application/x-payload",
                        annotations=None)
    select = ["--referrers", "--artifact-type", "application/x-payload"]
    key = ["--verify-key" if command == "pull" else "--key", keys["p256"][1]]

    def run(n: int):  # type: ignore[no-untyped-def]
        out = ["-o", str(tmp_path / f"out{n}")] if command == "pull" else []
        return cli(command, ref, *select, *key, *out, "--format", "json")

    refused = run(1)
    assert refused.code == 7, refused.out
    message = refused.json()["error"]["message"]
    assert f"no signature of {attached.digest} was found" in message and str(root.digest) not in message
    assert not (tmp_path / "out1").exists()
    ocisift.sign(f"oci:{tmp_path}/sample@{attached.digest}", keys["p256"][0])
    trusted = run(2)
    assert trusted.code == 0, trusted.err
    body = trusted.json()
    assert (body["verification"] if command == "pull" else body)["digest"] == str(attached.digest)
    if command == "pull":
        assert (tmp_path / "out2").is_dir()


@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_match_reference_binds_our_signature_to_the_signed_repository(tmp_path, keys, cli, bundle):
    """One digest under two names: what ocisift signs under one name does not vouch for it under the other."""
    path = tmp_path / "named"
    build_sample_layout(str(path))
    digest = ocisift.resolve(f"oci:{path}:1.2").root.digest
    store = LayoutStore(str(path))
    root = ocisift.resolve(f"oci:{path}@{digest}").root
    store.tag(root, "registry.example/acme/app:1.0")
    store.tag(root, "registry.example/other/app:1.0")
    ocisift.sign(f"oci:{path}/registry.example/acme/app:1.0", keys["p256"][0], bundle=bundle)
    args = ["--key", keys["p256"][1], "--match-reference"]
    good = cli("verify", f"oci:{path}/registry.example/acme/app:1.0", *args)
    assert good.code == 0, good.err
    bad = cli("verify", f"oci:{path}/registry.example/other/app:1.0", *args)
    assert bad.code == 7 and "registry.example/acme/app, not registry.example/other/app" in bad.err, bad.err


def test_copy_refused_leaves_the_destination_as_it_was(tmp_path, registry, keys, cli):
    repo = f"{registry.host}/acme/app"
    ocisift.push(f"{repo}:1.0", [_app(tmp_path)])
    ocisift.sign(f"{repo}:1.0", keys["p256"][0])
    refused = cli("copy", f"{repo}:1.0", f"oci:{tmp_path}/dst:1.0", "--verify-key", keys["rsa"][1])
    assert refused.code == 7
    assert not (tmp_path / "dst").exists()
    refused = cli("copy", f"{repo}:1.0", f"oci-archive:{tmp_path}/dst.tar:1.0", "--verify-key", keys["rsa"][1])
    assert refused.code == 7 and not (tmp_path / "dst.tar").exists()
    ok = cli("copy", f"{repo}:1.0", f"oci:{tmp_path}/dst:1.0", "--verify-key", keys["p256"][1], "--format", "json")
    assert ok.code == 0 and ok.json()["verification"]["trusted"]
    tags = cli("copy", "--all-tags", repo, f"oci:{tmp_path}/all", "--verify-key", keys["rsa"][1])
    assert tags.code == 7 and not (tmp_path / "all").exists()


def test_sync_verify_block_as_flux_spec_verify(tmp_path, registry, keys, cli):
    private, public = keys["p256"]
    signed, unsigned = f"{registry.host}/acme/signed", f"{registry.host}/acme/unsigned"
    ocisift.push(f"{signed}:1.0", [_app(tmp_path)])
    ocisift.sign(f"{signed}:1.0", private, bundle=True)
    ocisift.push(f"{unsigned}:1.0", [_app(tmp_path, "other")])
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.pub").write_bytes(Path(public).read_bytes())
    spec = tmp_path / "mirror.yaml"
    spec.write_text(f"""
defaults:
  referrers: true
  verify:
    provider: cosign
    keys: [keys/cosign.pub]
images:
  - source: {signed}
    tags: [1.0]
    destination: oci:{tmp_path}/mirror/signed
  - source: {unsigned}
    tags: [1.0]
    destination: oci:{tmp_path}/mirror/unsigned
""")
    result = cli("sync", str(spec), "--format", "json")
    assert result.code == 7, result.out
    body = result.json()
    first, second = body["images"]
    assert first["copied"] == [f"oci:{tmp_path}/mirror/signed:1.0"] and first["verified"]
    assert second["error"]["code"] == 7 and not (tmp_path / "mirror" / "unsigned").exists()
    assert cli("verify", f"oci:{tmp_path}/mirror/signed:1.0", "--key", public).code == 0
    again = cli("sync", str(spec), "--format", "json")
    assert again.json()["images"][0]["skipped"] and again.json()["images"][0]["verified"]


def test_every_tag_verified_leaves_cosigns_signature_tags_to_referrers(tmp_path, registry, keys, cli):
    """`sha256-<hex>.sig` is a tag of a repository signed the legacy way, but signs other content: verifying
    every tag leaves it out (with a note) instead of refusing a properly signed repository; --referrers brings
    the signatures of the images copied, so the destination verifies."""
    private, public = keys["p256"]
    repo = f"{registry.host}/acme/app"
    for tag in ("1.0", "2.0"):
        ocisift.push(f"{repo}:{tag}", [_app(tmp_path, tag)])
        ocisift.sign(f"{repo}:{tag}", private)
    assert len([t for t in ocisift.tags(repo) if t.endswith(".sig")]) == 2
    copied = cli("copy", "--all-tags", "--referrers", repo, f"oci:{tmp_path}/copy", "--verify-key", public,
                 "--format", "json")
    assert copied.code == 0, copied.out
    body = copied.json()
    results = body["tags"]
    assert sorted(r["tag"] for r in results) == ["1.0", "2.0"]
    assert "2 cosign signature" in " ".join(results[0]["notes"])
    for tag in ("1.0", "2.0"):
        assert cli("verify", f"oci:{tmp_path}/copy:{tag}", "--key", public).code == 0
    spec = tmp_path / "mirror.yaml"
    spec.write_text(f"""
images:
  - source: {repo}
    tags: all
    referrers: true
    verify: {{provider: cosign, keys: [{public}]}}
    destination: oci:{tmp_path}/mirror
""")
    synced = cli("sync", str(spec), "--format", "json")
    assert synced.code == 0, synced.out
    (image,) = synced.json()["images"]
    assert sorted(image["tags"]) == ["1.0", "2.0"] and len(image["verified"]) == 2
    assert "2 cosign signature" in image["notes"][0]
    assert cli("verify", f"oci:{tmp_path}/mirror:2.0", "--key", public).code == 0


def test_a_dry_run_lists_what_a_verified_run_copies_and_a_scope_accepted_unsigned_copies_every_tag(
        tmp_path, registry, keys, cli):
    """The signature tags are left out only where each tag must be signed: a dry run leaves out what the
    real run would; where a policy accepts the scope unsigned, they are ordinary tags and are copied."""
    private, public = keys["p256"]
    repo = f"{registry.host}/acme/app"
    for tag in ("1.0", "2.0"):
        ocisift.push(f"{repo}:{tag}", [_app(tmp_path, tag)])
        ocisift.sign(f"{repo}:{tag}", private)
    signature_tags = sorted(t for t in ocisift.tags(repo) if t.endswith(".sig"))
    assert len(signature_tags) == 2
    spec = tmp_path / "mirror.yaml"
    spec.write_text(f"""
images:
  - source: {repo}
    tags: all
    verify: {{provider: cosign, keys: [{public}]}}
    destination: oci:{tmp_path}/mirror
""")
    planned = cli("sync", str(spec), "--dry-run", "--format", "json")
    assert planned.code == 0, planned.out
    (image,) = planned.json()["images"]
    assert sorted(image["tags"]) == ["1.0", "2.0"] and "2 cosign signature" in image["notes"][0]
    assert not (tmp_path / "mirror").exists()
    synced = cli("sync", str(spec), "--format", "json")
    assert synced.code == 0 and sorted(synced.json()["images"][0]["tags"]) == ["1.0", "2.0"]

    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
default: reject
scopes:
  - scope: "{registry.host}/acme/*"
    accept: true
""")
    copied = cli("copy", "--all-tags", repo, f"oci:{tmp_path}/copy", "--verify-policy", str(policy),
                 "--format", "json")
    assert copied.code == 0, copied.out
    assert sorted(r["tag"] for r in copied.json()["tags"]) == sorted(["1.0", "2.0", *signature_tags])
    assert sorted(ocisift.tags(f"oci:{tmp_path}/copy")) == sorted(["1.0", "2.0", *signature_tags])
    spec.write_text(f"""
images:
  - source: {repo}
    tags: all
    destination: oci:{tmp_path}/accepted
""")
    for extra in (["--dry-run"], []):
        accepted = cli("sync", str(spec), "--verify-policy", str(policy), *extra, "--format", "json")
        assert accepted.code == 0, accepted.out
        (image,) = accepted.json()["images"]
        assert sorted(image["tags"]) == sorted(["1.0", "2.0", *signature_tags]) and not image.get("notes")
    assert cli("verify", f"oci:{tmp_path}/accepted:2.0", "--key", public).code == 0


def test_verify_policy_per_scope(tmp_path, registry, keys, cli):
    private, public = keys["p256"]
    repo = f"{registry.host}/acme/app"
    ocisift.push(f"{repo}:1.0", [_app(tmp_path)])
    ocisift.push(f"{registry.host}/other/app:1.0", [_app(tmp_path)])
    ocisift.sign(f"{repo}:1.0", private)
    ocisift.copy(f"{repo}:1.0", f"oci:{tmp_path}/local:1.0")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
default: reject
scopes:
  - scope: "{registry.host}/acme/*"
    verify: {{provider: cosign, keys: ["{public}"]}}
  - scope: "oci:{tmp_path}/*"
    accept: true
""")
    assert cli("verify", f"{repo}:1.0", "--policy", str(policy)).code == 0
    refused = cli("verify", f"{registry.host}/other/app:1.0", "--policy", str(policy))
    assert refused.code == 7 and "rejects" in refused.err
    accepted = cli("pull", f"oci:{tmp_path}/local:1.0", "-o", str(tmp_path / "out"), "--verify-policy", str(policy),
                   "--format", "json")
    assert accepted.code == 0 and accepted.json()["verification"]["accepted"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("scopes:\n  - scope: x\n    verify: {provider: cosign}\n")
    assert cli("verify", f"{repo}:1.0", "--policy", str(bad)).code == 2


def test_keyless_bundle_carried_to_a_registry_verifies_there(tmp_path, registry, cli):
    """cosign's real keyless bundle, copied with --referrers into a registry without a referrers API."""
    store = LayoutStore.create(str(tmp_path / "signed"))
    subject = image(store, GGCR_EMPTY_MANIFEST, GGCR_EMPTY_CONFIG)
    bundle_referrer(store, subject, (COSIGN / "oci-attestation.sigstore.json").read_bytes())
    dst = f"{registry.host}/acme/empty:1.0"
    assert cli("copy", "--referrers", f"oci:{tmp_path}/signed:1.0", dst).code == 0
    spec = VerifySpec(identities=(ocisift.IdentityMatch(subject=COSIGN_IDENTITY[0], issuer=COSIGN_IDENTITY[1]),),
                      trusted_root=str(COSIGN / "trusted_root_pgi.json"))
    verification = ocisift.verify(dst, spec)
    assert verification.trusted and "cody@soyland.com" in verification.verified.detail  # type: ignore[union-attr]
    with pytest.raises(ocisift.NotTrustedError) as caught:
        ocisift.verify(dst, VerifySpec(keys=(str(COSIGN.parent / "containers-image" / "cosign.pub"),)))
    assert caught.value.exit_code == 7 and caught.value.verification.attempts


def test_usage_errors_name_what_is_missing(tmp_path, keys, cli):
    build_sample_layout(str(tmp_path / "s"))
    ref = f"oci:{tmp_path}/s:1.2"
    assert cli("verify", ref).code == 2
    assert "trusted_root" in cli("verify", ref, "--certificate-identity", "a", "--certificate-oidc-issuer", "b").err
    assert cli("verify", ref, "--key", str(tmp_path / "absent.pub")).code == 2
    assert cli("verify", ref, "--key", keys["p256"][0]).code == 2  # a private key where a public one goes
    assert cli("verify", ref, "--trust-policy", str(tmp_path / "none.json")).code == 2
    assert cli("verify", ref, "--key", keys["p256"][1], "--match-reference").code == 2  # a layout has no name


def test_api_values(tmp_path, keys):
    build_sample_layout(str(tmp_path / "s"))
    ref = f"oci:{tmp_path}/s:1.2"
    signed = ocisift.sign(ref, keys["ed25519"][0], annotations={"build": "42"})
    verification = ocisift.verify(ref, VerifySpec(keys=(keys["ed25519"][1],)), Selector.build("linux/amd64:el8"))
    assert verification.digest == signed.subject.digest
    assert json.loads(json.dumps(verification.to_json()))["trusted"] is True


@pytest.mark.parametrize(("block", "words"), [
    ("{provider: sigstore}", "unknown provider"),
    ("{provider: cosign}", "needs public keys"),
    ("{keys: [a.pub], matchOIDCIdentity: [{issuer: x}]}", "give both issuer and subject"),
    ("{matchOIDCIdentity: [{issuer: x, subject: y}]}", "trusted_root"),
    ("{provider: notation, trustPolicy: p.json}", "trust store"),
    ("{keys: [a.pub], secretRef: x}", "unknown key"),
    ("{matchOIDCIdentity: [{issuer: '(', subject: y}], trustedRoot: r.json}", "not a valid regular expression"),
])
def test_sync_verify_block_mistakes_name_their_line(tmp_path, block, words):
    from ocisift._core.errors import UsageError
    from ocisift._core.specfile import parse_spec

    text = f"images:\n  - source: localhost:5000/a\n    tags: [1]\n    destination: oci:out\n    verify: {block}\n"
    with pytest.raises(UsageError) as caught:
        parse_spec(text, str(tmp_path / "spec.yaml"))
    assert words in caught.value.message and "spec.yaml:" in caught.value.message


def test_sync_verify_block_paths_are_relative_to_the_spec(tmp_path):
    from ocisift._core.specfile import parse_spec

    text = ("defaults:\n  verify: {keys: [keys/a.pub, /abs/b.pub]}\nimages:\n  - source: localhost:5000/a\n"
            "    tags: [1]\n    destination: oci:out\n")
    spec = parse_spec(text, str(tmp_path / "conf" / "spec.yaml"))
    assert spec.images[0].verify == VerifySpec(keys=(str(tmp_path / "conf" / "keys/a.pub"), "/abs/b.pub"))


def test_public_keys_load_as_cryptographys_public_loader_loads_them(keys):  # type: ignore[no-untyped-def]
    """keys.py loads PEM public keys through the binding cryptography's `serialization.load_pem_public_key`
    is (to skip importing the SSH key code): still the same object, and every kind loads to the same key."""
    from cryptography.hazmat.primitives import serialization

    from ocisift._trust.keys import _pem_public_key_loader, load_public_key

    assert _pem_public_key_loader() is serialization.load_pem_public_key
    for _, public in keys.values():
        data = Path(public).read_bytes()
        loaded = load_public_key(public)
        assert loaded.name == public
        assert public_pem(loaded.key) == public_pem(serialization.load_pem_public_key(data)) == data


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_the_verifying_ecdsa_verifies_exactly_what_cryptographys_ecdsa_does(curve):  # type: ignore[no-untyped-def]
    """keys.VerifyingECDSA skips `ec.ECDSA.__init__` (which imports the OpenSSL backend): a good signature
    verifies, over plain and prehashed data; a tampered one, another message or another key does not."""
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import utils

    from ocisift._trust.keys import VerifyingECDSA, verify_prehashed, verify_signature

    private, other = ec.generate_private_key(curve), ec.generate_private_key(curve)
    data = b"payload bytes"
    good = private.sign(data, ec.ECDSA(hashes.SHA256()))
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    for signature, message, key, expected in [(good, data, private, True), (tampered, data, private, False),
                                              (good, b"other", private, False), (good, data, other, False)]:
        results = []
        for algorithm in (ec.ECDSA(hashes.SHA256()), VerifyingECDSA(hashes.SHA256())):
            try:
                key.public_key().verify(signature, message, algorithm)
                results.append(True)
            except InvalidSignature:
                results.append(False)
        assert results == [expected, expected]
        assert verify_signature(key.public_key(), signature, message) is expected
    digest = hashlib.sha256(data).digest()
    prehashed = private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert verify_prehashed(private.public_key(), prehashed, digest)
    assert not verify_prehashed(other.public_key(), prehashed, digest)
    assert VerifyingECDSA(hashes.SHA256()).deterministic_signing is False


def test_a_key_verification_leaves_the_openssl_backend_unimported(keys):  # type: ignore[no-untyped-def]
    """What VerifyingECDSA is for: a fresh process that loads a key and checks a signature never imports
    cryptography's OpenSSL backend (about 3 ms of a verified pull's start-up)."""
    import subprocess
    import sys

    _, public = keys["p256"]
    script = ("import sys; from ocisift._trust.keys import load_public_key, verify_signature; "
              f"k = load_public_key({public!r}); assert not verify_signature(k.key, b'0' * 70, b'data'); "
              "print('cryptography.hazmat.backends.openssl' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
