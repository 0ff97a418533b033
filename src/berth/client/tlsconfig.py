"""TLS settings for tcp endpoints, with the docker CLI's meaning of the knobs.

``--tls`` alone encrypts without verifying the server; ``--tlsverify`` (or DOCKER_TLS_VERIFY)
verifies it against ``--tlscacert``; a client certificate is sent when cert and key are given.
Defaults come from DOCKER_CERT_PATH (else the config dir): ``ca.pem``, ``cert.pem``, ``key.pem``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from berth.client.errors import TLSError

CA_FILE = "ca.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


class TLSConfig(NamedTuple):
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify: bool = True

    def ssl_context(self):  # -> ssl.SSLContext (ssl imported lazily: it is slow to import)
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.verify:
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            try:
                if self.ca_file:
                    ctx.load_verify_locations(cafile=self.ca_file)
                else:
                    ctx.load_default_certs()
            except (OSError, ssl.SSLError) as e:
                raise TLSError(f"could not read CA certificate {self.ca_file!r}: {e}") from e
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file or self.key_file:
            if not (self.cert_file and self.key_file):
                raise TLSError("TLS client certificate and key must both be given")
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as e:
                raise TLSError(
                    f"could not load X509 key pair (cert: {self.cert_file!r}, key: {self.key_file!r}): {e}"
                ) from e
        return ctx


def default_cert_path(config_dir: str) -> str:
    return os.environ.get("DOCKER_CERT_PATH") or config_dir


def tls_from_options(
    *,
    tls: bool,
    verify: bool,
    cert_path: str,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> TLSConfig | None:
    """Docker's flag logic (cli/flags SetDefaultOptions): None when TLS is off.

    Files that were not given explicitly are used only if they exist.
    """
    if verify:
        tls = True
    if not tls:
        return None

    def pick(explicit: str | None, name: str) -> str:
        if explicit:
            return explicit
        path = os.path.join(cert_path, name)
        return path if os.path.exists(path) else ""

    # Verifying needs the CA: a missing ca.pem is an error later, as with docker.
    ca = (ca_file or os.path.join(cert_path, CA_FILE)) if verify else ""
    return TLSConfig(
        ca_file=ca,
        cert_file=pick(cert_file, CERT_FILE),
        key_file=pick(key_file, KEY_FILE),
        verify=verify,
    )
