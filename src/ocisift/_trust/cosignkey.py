"""cosign's private keys: the encrypted PEM `cosign generate-key-pair` writes, and signing with them.

The file is PEM of type `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
`ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-tuf's encrypted JSON:
`{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher":
{"name": "nacl/secretbox", "nonce"}, "ciphertext"}`. The key is scrypt of the
password (32 bytes), the plaintext the PKCS#8 DER of the private key, sealed
with NaCl's secretbox (XSalsa20-Poly1305). Plain PEM private keys (PKCS#8,
SEC1, PKCS#1) are taken too. A file is bounded, and so is the scrypt work it
may ask for, before anything is derived.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .._core.errors import UsageError
from .keys import PublicKeyType, check_key_type, read_key_file

PrivateKeyType = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
ENCRYPTED_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
WRITE_LABEL = ENCRYPTED_LABELS[0]
DEFAULT_SCRYPT = {"N": 32768, "r": 8, "p": 1}  # go-tuf's standard parameters, as cosign writes them
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # 128 * N * r * p bytes


def load_private_key(path: str, password: bytes | None) -> PrivateKeyType:
    """The private key in `path`; an encrypted one needs `password` (cosign's COSIGN_PASSWORD)."""
    return parse_private_key(read_key_file(path, "private key"), password, path)


def parse_private_key(data: bytes, password: bytes | None, where: str) -> PrivateKeyType:
    label, body = _pem_body(data, where)
    if label in ENCRYPTED_LABELS:
        if password is None:
            raise UsageError(f"{where} is an encrypted cosign key: give its password in COSIGN_PASSWORD")
        der = decrypt(body, password, where)
        try:
            key: object = serialization.load_der_private_key(der, None)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UsageError(f"{where}: the decrypted key is not a PKCS#8 private key ({exc})") from None
    else:
        encrypted = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data
        try:
            key = serialization.load_pem_private_key(data, (password or None) if encrypted else None)
        except TypeError:
            raise UsageError(f"{where} is an encrypted PEM key: give its password in COSIGN_PASSWORD") from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UsageError(f"{where}: not a private key cosign or ocisift can read ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise UsageError(f"{where}: {type(key).__name__} keys are not supported (ECDSA, RSA or Ed25519)")
    check_key_type(key.public_key(), where)
    return key


def _pem_body(data: bytes, where: str) -> tuple[str, bytes]:
    text = data.decode("ascii", errors="replace")
    begin = text.find("-----BEGIN ")
    if begin < 0:
        raise UsageError(f"{where}: not a PEM file (no -----BEGIN line)")
    label_end = text.find("-----", begin + 11)
    label = text[begin + 11:label_end] if label_end > 0 else ""
    end = text.find(f"-----END {label}-----", label_end)
    if not label or end < 0:
        raise UsageError(f"{where}: a PEM block without its END line")
    inner = "".join(line.strip() for line in text[label_end + 5:end].splitlines())
    try:
        return label, base64.b64decode(inner, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{where}: the PEM body is not base64") from None


def decrypt(body: bytes, password: bytes, where: str) -> bytes:
    """go-tuf's encrypted JSON, opened with the password."""
    try:
        doc = json.loads(body)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = kdf["params"]
        n, r, p = (int(params[k]) for k in ("N", "r", "p"))
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise UsageError(f"{where}: not an encrypted cosign key (its JSON is not go-tuf's)") from None
    if names != ("scrypt", "nacl/secretbox"):
        raise UsageError(f"{where}: key encrypted with {names[0]}/{names[1]}; cosign's is scrypt/nacl-secretbox")
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > MAX_SCRYPT_MEMORY:
        raise UsageError(f"{where}: scrypt parameters N={n} r={r} p={p} are out of bounds")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise UsageError(f"{where}: a secretbox nonce of {len(nonce)} bytes (24 expected)")
    key = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=MAX_SCRYPT_MEMORY + 1024 * 1024)
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError:
        raise UsageError(f"{where}: wrong password (COSIGN_PASSWORD), or the key file is damaged") from None


def encrypt_private_key(key: PrivateKeyType, password: bytes, params: dict[str, int] | None = None) -> bytes:
    """The PEM cosign writes for a key pair it generates (go-tuf's standard scrypt parameters)."""
    params = dict(params or DEFAULT_SCRYPT)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    secret = hashlib.scrypt(password, salt=salt, n=params["N"], r=params["r"], p=params["p"], dklen=32,
                            maxmem=MAX_SCRYPT_MEMORY + 1024 * 1024)
    sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    doc: dict[str, Any] = {
        "kdf": {"name": "scrypt", "params": params, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {WRITE_LABEL}-----\n" + "\n".join(lines) + f"\n-----END {WRITE_LABEL}-----\n").encode()


def sign(key: PrivateKeyType, data: bytes) -> bytes:
    """A signature as cosign makes one: ECDSA (DER) and RSA PKCS#1 v1.5 over SHA-256, Ed25519 over the bytes."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def public_key(key: PrivateKeyType) -> PublicKeyType:
    return key.public_key()
