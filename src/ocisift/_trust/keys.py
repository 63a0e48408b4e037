"""Public keys as cosign takes them (PEM: ECDSA P-256/P-384/P-521, RSA, Ed25519) and the signature checks.

A signature is checked with the scheme the key's type implies, as cosign and
Flux do: ECDSA with the curve's hash (SHA-256 for P-256, which cosign uses for
every curve too, so SHA-256 is also tried), RSA PKCS#1 v1.5 with SHA-256,
Ed25519 over the bytes. A key of another algorithm than the signature's simply
does not verify it; a key type cosign cannot sign with is refused when loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from .._core.errors import UsageError

PublicKeyType = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
MAX_KEY_FILE_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
_CURVE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512,
}


class NamedKey(NamedTuple):
    """A public key and where it came from (what a verification names as its signer).

    The trust records are named tuples, not dataclasses: a frozen dataclass costs about a millisecond to
    define (its methods are generated and compiled at import), and a verified pull imports them all."""

    name: str
    key: PublicKeyType

    @property
    def algorithm(self) -> str:
        return describe_key(self.key)


def describe_key(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return type(key).__name__


def read_key_file(path: str, what: str = "key") -> bytes:
    """A key or certificate file, bounded (a key is a few hundred bytes)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_KEY_FILE_BYTES:
            raise UsageError(f"{path}: {size} bytes is too large for a {what} file (at most {MAX_KEY_FILE_BYTES})")
        with open(path, "rb") as fh:
            return fh.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a {what} file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from None


def check_key_type(key: object, where: str) -> PublicKeyType:
    """The key, when it is one cosign signs with; else a usage error naming what it is."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASHES:
            raise UsageError(f"{where}: ECDSA curve {key.curve.name} is not one cosign uses (P-256, P-384, P-521)")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UsageError(f"{where}: an RSA key of {key.key_size} bits is too small (at least {MIN_RSA_BITS})")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise UsageError(f"{where}: {type(key).__name__} keys are not supported (ECDSA, RSA or Ed25519)")


def parse_public_key(data: bytes, where: str) -> PublicKeyType:
    """A PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign generate-key-pair` writes `cosign.pub`."""
    if b"PRIVATE KEY" in data:
        raise UsageError(f"{where} holds a private key; verification takes the public key (cosign.pub)")
    try:
        key = _pem_public_key_loader()(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{where}: not a PEM public key ({exc})") from None
    return check_key_type(key, where)


def _pem_public_key_loader() -> Callable[[bytes], object]:
    """cryptography's `serialization.load_pem_public_key`, without importing `serialization`.

    That package's `__init__` imports the SSH key code (ciphers, bcrypt): about 7 ms of a verified pull's
    start-up, for nothing a PEM public key needs. The public function is this very binding (cryptography's
    `serialization/base.py` assigns it), and a test checks they are still the same object; should a release
    move it, the public import is used."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        loader: Callable[[bytes], object] = rust_openssl.keys.load_pem_public_key
        return loader
    except (ImportError, AttributeError):  # pragma: no cover - a cryptography that moved it
        from cryptography.hazmat.primitives import serialization

        return serialization.load_pem_public_key


def load_public_key(path: str) -> NamedKey:
    return NamedKey(path, parse_public_key(read_key_file(path, "public key"), path))


class VerifyingECDSA(ec.ECDSA):
    """cryptography's ECDSA signature algorithm, for verifying only, made without importing its OpenSSL backend.

    `ec.ECDSA.__init__` imports that backend (ciphers, legacy modes: about 3 ms of a verified pull's
    start-up here) only to ask whether deterministic *signing* is supported. Verification reads nothing but
    the `algorithm` property, which this subclass answers itself; `deterministic_signing` is False, as for
    any ECDSA that verifies. A test checks it verifies exactly what `ec.ECDSA` does, and that a verification
    leaves the backend unimported. Signing uses `ec.ECDSA` itself."""

    def __init__(self, algorithm: utils.Prehashed | hashes.HashAlgorithm) -> None:  # no super(): see above
        self._verifying_algorithm = algorithm

    @property
    def algorithm(self) -> utils.Prehashed | hashes.HashAlgorithm:
        return self._verifying_algorithm

    @property
    def deterministic_signing(self) -> bool:
        return False


def verify_signature(key: PublicKeyType, signature: bytes, data: bytes) -> bool:
    """Does `signature` sign `data` under `key`? Never raises for a bad or foreign signature."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return True
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        for algorithm in _ecdsa_hashes(key):
            try:
                key.verify(signature, data, VerifyingECDSA(algorithm))
                return True
            except InvalidSignature:
                continue
        return False
    except (InvalidSignature, ValueError):
        return False


def verify_prehashed(key: PublicKeyType, signature: bytes, digest: bytes) -> bool:
    """A signature over a SHA-256 digest already computed (a sigstore message signature over an artifact)."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            return False  # Ed25519 signs messages, never digests
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            key.verify(signature, digest, VerifyingECDSA(prehashed))
        return True
    except (InvalidSignature, ValueError):
        return False


def _ecdsa_hashes(key: ec.EllipticCurvePublicKey) -> list[hashes.HashAlgorithm]:
    own = _CURVE_HASHES[key.curve.name]()
    return [own] if isinstance(own, hashes.SHA256) else [own, hashes.SHA256()]


def public_pem(key: PublicKeyType) -> bytes:
    from cryptography.hazmat.primitives import serialization  # signing only (see _pem_public_key_loader)

    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
