"""A test certificate authority made by openssl, and the certificates it signs, for loopback TLS.

Besides good server certificates it makes the bad ones a client must refuse (expired, issued for
another name) and client certificates for mutual TLS, all with the real openssl, so what a test
verifies is what a real private CA would hand out.
"""

from __future__ import annotations

import datetime
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SANS = ("IP:127.0.0.1", "DNS:localhost")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _asn1_time(moment: datetime.datetime) -> str:
    """openssl ca's -startdate/-enddate format: YYYYMMDDHHMMSSZ in UTC."""
    return moment.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%SZ")


@dataclass
class CA:
    folder: Path
    cert: Path
    key: Path

    def issue(self, name: str, *, sans: tuple[str, ...] = DEFAULT_SANS,
              days: int = 2) -> tuple[Path, Path]:
        """A server certificate (cert, key) for these subject alternative names, signed by this CA."""
        key, csr, cert = self._request(name)
        ext = self._extensions(name, sans=sans, usage="serverAuth")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext), cwd=self.folder)
        return cert, key

    def issue_wrong_name(self, name: str, *, other: str = "other.example") -> tuple[Path, Path]:
        """A valid server certificate from this CA, but for `other` only: a client dialling 127.0.0.1,
        localhost or any other name must refuse it as a hostname mismatch (verify code 62)."""
        return self.issue(name, sans=(f"DNS:{other}",))

    def issue_expired(self, name: str, *, sans: tuple[str, ...] = DEFAULT_SANS) -> tuple[Path, Path]:
        """A server certificate from this CA, right names, that expired yesterday (verify code 10).

        OpenSSL 3.0's `x509 -req` takes only a positive -days (-not_before/-not_after came in 3.4), so
        this goes through `openssl ca`, whose -startdate/-enddate set any validity window.
        """
        now = datetime.datetime.now(datetime.UTC)
        return self._issue_with_ca(name, sans=sans, usage="serverAuth",
                                   not_before=now - datetime.timedelta(days=3),
                                   not_after=now - datetime.timedelta(days=1))

    def issue_client(self, name: str, *, days: int = 2) -> tuple[Path, Path]:
        """A client certificate (cert, key) for mutual TLS: extendedKeyUsage=clientAuth, CN=name, no SAN.

        Go's crypto/tls, which distribution uses, refuses a client certificate without clientAuth.
        """
        key, csr, cert = self._request(name)
        ext = self._extensions(name, sans=(), usage="clientAuth")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext), cwd=self.folder)
        return cert, key

    def _request(self, name: str) -> tuple[Path, Path, Path]:
        """A fresh P-256 key and a CSR for CN=name; returns (key, csr, where the certificate goes)."""
        key, csr, cert = (self.folder / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                 "-out", str(csr), "-subj", f"/CN={name}", cwd=self.folder)
        return key, csr, cert

    def _extensions(self, name: str, *, sans: tuple[str, ...], usage: str) -> Path:
        ext = self.folder / f"{name}.ext"
        lines = [f"subjectAltName={','.join(sans)}"] if sans else []
        lines += [f"extendedKeyUsage={usage}", "basicConstraints=critical,CA:FALSE",
                  "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        ext.write_text("\n".join(lines) + "\n")
        return ext

    def _issue_with_ca(self, name: str, *, sans: tuple[str, ...], usage: str,
                       not_before: datetime.datetime, not_after: datetime.datetime) -> tuple[Path, Path]:
        """Sign with `openssl ca`, which needs a small database: an index, a folder for copies, a config."""
        key, csr, cert = self._request(name)
        ext = self._extensions(name, sans=sans, usage=usage)
        db = self.folder / "ca-db"
        (db / "new").mkdir(parents=True, exist_ok=True)
        (db / "index.txt").touch()
        config = db / "ca.cnf"
        config.write_text(f"""[ca]
default_ca = test_ca

[test_ca]
database = {db / 'index.txt'}
new_certs_dir = {db / 'new'}
rand_serial = yes
unique_subject = no
default_md = sha256
policy = policy_any
copy_extensions = none

[policy_any]
commonName = supplied
""")
        _openssl("ca", "-batch", "-notext", "-config", str(config), "-cert", str(self.cert), "-keyfile", str(self.key),
                 "-in", str(csr), "-out", str(cert), "-extfile", str(ext),
                 "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after), cwd=self.folder)
        return cert, key


def make_ca(folder: Path, name: str = "ocisift-test-ca") -> CA:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ca.crt", folder / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    return CA(folder, cert, key)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


def client_context(ca: Path, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client context that trusts only `ca` (not the system store), optionally presenting a client certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context
