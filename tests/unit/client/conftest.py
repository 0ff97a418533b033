import ssl

import pytest


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA, a server cert for 127.0.0.1/localhost, a client cert; as files."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("berth-client@example.com")
    d = tmp_path_factory.mktemp("certs")
    files = {
        "ca": d / "ca.pem",
        "cert": d / "cert.pem",
        "key": d / "key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    other_ca = trustme.CA()
    other = d / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(other))

    def server_context(require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.configure_cert(ctx)
        if require_client_cert:
            ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    return {"dir": d, "server_context": server_context, "other_ca": str(other), **{k: str(v) for k, v in files.items()}}
