"""Docker contexts, in the docker CLI's own store format (the two CLIs share the files).

Layout under the config dir (``$DOCKER_CONFIG``, default ``~/.docker``)::

    contexts/meta/<sha256(name)>/meta.json
        {"Name":..,"Metadata":{"Description":..},"Endpoints":{"docker":{"Host":..,"SkipTLSVerify":..}}}
    contexts/tls/<sha256(name)>/docker/{ca.pem,cert.pem,key.pem}
    config.json  "currentContext"

The ``default`` context is not stored: it is DOCKER_HOST / ``-H`` (else berth's default
socket ``unix:///run/berth.sock``) with the TLS flags. Which context is used, as docker
decides: ``--context`` > ``--host`` (default) > DOCKER_HOST (default) > DOCKER_CONTEXT >
config.json currentContext > default. ``--context`` with ``--host`` is an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any, NamedTuple

from berth.client.config import ConfigFile, config_dir
from berth.client.errors import ContextError, ContextNotFound
from berth.client.gojson import dumps as go_json
from berth.client.hosts import parse_host
from berth.client.tlsconfig import CA_FILE, CERT_FILE, KEY_FILE, TLSConfig, default_cert_path, tls_from_options

DEFAULT_CONTEXT = "default"
DOCKER_ENDPOINT = "docker"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"
_VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$")
IN_MEMORY = "<IN MEMORY>"


def context_id(name: str) -> str:
    """The store's directory name for a context: sha256 of the name, hex."""
    import hashlib  # lazily: its import costs milliseconds the fast paths do not have

    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def validate_name(name: str) -> None:
    if not name:
        raise ContextError("context name cannot be empty")
    if name == DEFAULT_CONTEXT:
        raise ContextError('"default" is a reserved context name')
    if not _VALID_NAME.match(name):
        raise ContextError(
            f'context name "{name}" is invalid, names are validated against regexp '
            f'"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"'
        )


class Context:
    """One context's metadata. Unknown metadata fields and other endpoints are kept."""

    def __init__(self, name: str, metadata: dict[str, Any] | None = None, endpoints: dict[str, Any] | None = None):
        self.name = name
        self.metadata: dict[str, Any] = metadata if metadata is not None else {}
        self.endpoints: dict[str, Any] = endpoints if endpoints is not None else {}

    def __repr__(self) -> str:
        return f"Context({self.name!r}, {self.metadata!r}, {self.endpoints!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Context) and self.to_json() == other.to_json()

    @property
    def description(self) -> str:
        value = self.metadata.get("Description", "")
        return value if isinstance(value, str) else ""

    @description.setter
    def description(self, text: str) -> None:
        if text:
            self.metadata["Description"] = text
        else:
            self.metadata.pop("Description", None)

    @property
    def docker_endpoint(self) -> dict[str, Any]:
        ep = self.endpoints.get(DOCKER_ENDPOINT)
        if not isinstance(ep, dict):
            raise ContextError("cannot find docker endpoint in context")
        return ep

    @property
    def host(self) -> str:
        return str(self.endpoints.get(DOCKER_ENDPOINT, {}).get("Host", "") or "")

    @property
    def skip_tls_verify(self) -> bool:
        return bool(self.endpoints.get(DOCKER_ENDPOINT, {}).get("SkipTLSVerify", False))

    def to_json(self) -> dict[str, Any]:
        """Go's marshalling of store.Metadata (field order, omitempty, endpoint layout)."""
        out: dict[str, Any] = {}
        if self.name:
            out["Name"] = self.name
        out["Metadata"] = dict(sorted(self.metadata.items()))  # a Go map: sorted keys
        if self.endpoints:
            eps: dict[str, Any] = {}
            for key, ep in self.endpoints.items():
                if key == DOCKER_ENDPOINT and isinstance(ep, dict):
                    eps[key] = _docker_endpoint_json(ep)
                else:
                    eps[key] = ep
            out["Endpoints"] = eps
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Context":
        metadata = data.get("Metadata") or {}
        endpoints = data.get("Endpoints") or {}
        return cls(
            name=str(data.get("Name", "") or ""),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            endpoints=dict(endpoints) if isinstance(endpoints, dict) else {},
        )


def _docker_endpoint_json(ep: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ep.get("Host"):
        out["Host"] = ep["Host"]
    out["SkipTLSVerify"] = bool(ep.get("SkipTLSVerify", False))
    for k, v in ep.items():  # fields a newer CLI may add
        if k not in ("Host", "SkipTLSVerify"):
            out[k] = v
    return out


class ContextStore:
    """The on-disk store (no ``default`` here: see ``StoreWithDefault``)."""

    def __init__(self, config_directory: str):
        self.root = os.path.join(config_directory, "contexts")
        self.meta_root = os.path.join(self.root, "meta")
        self.tls_root = os.path.join(self.root, "tls")

    def meta_dir(self, name: str) -> str:
        return os.path.join(self.meta_root, context_id(name))

    def tls_dir(self, name: str) -> str:
        return os.path.join(self.tls_root, context_id(name))

    def tls_path(self, name: str, endpoint: str, filename: str) -> str:
        return os.path.join(self.tls_dir(name), endpoint, filename)

    def storage_info(self, name: str) -> dict[str, str]:
        return {"MetadataPath": self.meta_dir(name), "TLSPath": self.tls_dir(name)}

    def exists(self, name: str) -> bool:
        return os.path.exists(self.meta_dir(name))

    def get(self, name: str) -> Context:
        path = os.path.join(self.meta_dir(name), "meta.json")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise ContextNotFound(
                f'context "{name}": context not found: open {path}: no such file or directory'
            ) from None
        except OSError as e:
            raise ContextError(f'context "{name}": {e}') from e
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise ContextError(f'context "{name}": parsing {path}: {e}') from e
        if not isinstance(data, dict):
            raise ContextError(f'context "{name}": parsing {path}: not a JSON object')
        return Context.from_json(data)

    def list(self) -> list[Context]:
        """Every stored context (docker also finds nested dirs), sorted naturally by name."""
        found: list[Context] = []
        for dirpath, dirnames, filenames in os.walk(self.meta_root):
            dirnames.sort()
            if dirpath != self.meta_root and "meta.json" in filenames:
                try:
                    with open(os.path.join(dirpath, "meta.json"), "rb") as f:
                        data = json.loads(f.read())
                except FileNotFoundError:
                    continue
                except (OSError, ValueError) as e:
                    raise ContextError(f"failed to read metadata: {e}") from e
                if isinstance(data, dict):
                    found.append(Context.from_json(data))
        found.sort(key=lambda c: natural_key(c.name))
        return found

    def create_or_update(self, ctx: Context) -> None:
        if ctx.name == DEFAULT_CONTEXT:
            raise ContextError("default context cannot be created nor updated")
        directory = self.meta_dir(ctx.name)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        _atomic_write(os.path.join(directory, "meta.json"), go_json(ctx.to_json()).encode(), 0o644)

    def remove(self, name: str) -> None:
        if name == DEFAULT_CONTEXT:
            raise ContextError("default context cannot be removed")
        for path in (self.meta_dir(name), self.tls_dir(name)):
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise ContextError(f"failed to remove context {name}: {e}") from e

    def list_tls_files(self, name: str) -> dict[str, list[str]]:
        base = self.tls_dir(name)
        out: dict[str, list[str]] = {}
        try:
            endpoints = sorted(os.listdir(base))
        except FileNotFoundError:
            return out
        for ep in endpoints:
            ep_dir = os.path.join(base, ep)
            if os.path.isdir(ep_dir):
                out[ep] = sorted(f for f in os.listdir(ep_dir) if os.path.isfile(os.path.join(ep_dir, f)))
        return out

    def get_tls_data(self, name: str, endpoint: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for filename in self.list_tls_files(name).get(endpoint, []):
            with open(self.tls_path(name, endpoint, filename), "rb") as f:
                out[filename] = f.read()
        return out

    def reset_tls(self, name: str, endpoints: dict[str, dict[str, bytes]] | None) -> None:
        """Replace all TLS material of a context."""
        shutil.rmtree(self.tls_dir(name), ignore_errors=True)
        for ep, files in (endpoints or {}).items():
            self._write_tls(name, ep, files)

    def reset_endpoint_tls(self, name: str, endpoint: str, files: dict[str, bytes] | None) -> None:
        shutil.rmtree(os.path.join(self.tls_dir(name), endpoint), ignore_errors=True)
        if files:
            self._write_tls(name, endpoint, files)

    def _write_tls(self, name: str, endpoint: str, files: dict[str, bytes]) -> None:
        directory = os.path.join(self.tls_dir(name), endpoint)
        os.makedirs(self.tls_root, mode=0o755, exist_ok=True)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for filename, data in files.items():
            _atomic_write(os.path.join(directory, filename), data, 0o600)


def _atomic_write(path: str, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def natural_key(s: str) -> list[Any]:
    """fvbommel/sortorder's NaturalLess order: digit runs compare as numbers."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", s)]


# -- options and resolution -----------------------------------------------------------------------


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") != ""


class ClientOptions:
    """The docker CLI's connection flags; TLS defaults come from DOCKER_TLS(_VERIFY)."""

    def __init__(
        self,
        config_dir: str | None = None,
        context: str | None = None,
        host: str | None = None,
        tls: bool | None = None,
        tls_verify: bool | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ):
        self.config_dir = config_dir
        self.context = context
        self.host = host
        self.tls = _env_flag("DOCKER_TLS") if tls is None else tls
        self.tls_verify = _env_flag("DOCKER_TLS_VERIFY") if tls_verify is None else tls_verify
        self.tls_ca = tls_ca
        self.tls_cert = tls_cert
        self.tls_key = tls_key

    def __repr__(self) -> str:
        return f"ClientOptions({vars(self)!r})"

    @property
    def directory(self) -> str:
        return config_dir(self.config_dir)

    @property
    def tls_enabled(self) -> bool:
        return self.tls or self.tls_verify

    def tls_config(self) -> TLSConfig | None:
        return tls_from_options(
            tls=self.tls,
            verify=self.tls_verify,
            cert_path=default_cert_path(self.directory),
            ca_file=self.tls_ca,
            cert_file=self.tls_cert,
            key_file=self.tls_key,
        )


class Endpoint(NamedTuple):
    """Where and how to connect: what ``APIClient.from_endpoint`` takes."""

    host: str
    tls: TLSConfig | None = None
    context: str = DEFAULT_CONTEXT
    skip_tls_verify: bool = False


def resolve_context_name(options: ClientOptions, config: ConfigFile | None = None) -> str:
    if options.context and options.host:
        raise ContextError("conflicting options: cannot specify both --host and --context")
    if options.context:
        return options.context
    if options.host:
        return DEFAULT_CONTEXT
    if os.environ.get("DOCKER_HOST"):
        return DEFAULT_CONTEXT
    env_ctx = os.environ.get("DOCKER_CONTEXT")
    if env_ctx:
        return env_ctx
    if config is None:
        config = ConfigFile.load(options.directory)
    return config.current_context or DEFAULT_CONTEXT


def default_endpoint(options: ClientOptions) -> Endpoint:
    host = parse_host(options.host or os.environ.get("DOCKER_HOST"), default_to_tls=options.tls_enabled)
    tls = options.tls_config()
    return Endpoint(host=host, tls=tls, context=DEFAULT_CONTEXT, skip_tls_verify=bool(tls and not tls.verify))


def context_endpoint(store: ContextStore, name: str) -> Endpoint:
    ctx = store.get(name)
    ep = ctx.docker_endpoint
    host = str(ep.get("Host") or "") or parse_host(None)
    skip = bool(ep.get("SkipTLSVerify", False))
    files = store.list_tls_files(name).get(DOCKER_ENDPOINT, [])
    tls: TLSConfig | None = None
    if files or skip:

        def path(fn: str) -> str:
            return store.tls_path(name, DOCKER_ENDPOINT, fn) if fn in files else ""

        tls = TLSConfig(ca_file=path(CA_FILE), cert_file=path(CERT_FILE), key_file=path(KEY_FILE), verify=not skip)
    return Endpoint(host=host, tls=tls, context=name, skip_tls_verify=skip)


def resolve_endpoint(options: ClientOptions, config: ConfigFile | None = None) -> Endpoint:
    """The endpoint the docker CLI would connect to with these options."""
    if config is None:
        config = ConfigFile.load(options.directory)
    name = resolve_context_name(options, config)
    if name == DEFAULT_CONTEXT:
        return default_endpoint(options)
    return context_endpoint(ContextStore(options.directory), name)


class StoreWithDefault:
    """The store plus the in-memory ``default`` context (docker's ContextStoreWithDefault)."""

    def __init__(self, store: ContextStore, options: ClientOptions):
        self.store = store
        self.options = options

    def default(self) -> tuple[Context, dict[str, bytes]]:
        ep = default_endpoint(self.options)
        ctx = Context(
            name=DEFAULT_CONTEXT,
            metadata={},
            endpoints={DOCKER_ENDPOINT: {"Host": ep.host, "SkipTLSVerify": ep.skip_tls_verify}},
        )
        tls: dict[str, bytes] = {}
        if ep.tls is not None:
            for fn, src in ((CA_FILE, ep.tls.ca_file), (CERT_FILE, ep.tls.cert_file), (KEY_FILE, ep.tls.key_file)):
                if src:
                    try:
                        with open(src, "rb") as f:
                            tls[fn] = f.read()
                    except OSError as e:
                        raise ContextError(f"open {src}: {e.strerror.lower() if e.strerror else e}") from e
        return ctx, tls

    def get(self, name: str) -> Context:
        if name == DEFAULT_CONTEXT:
            return self.default()[0]
        return self.store.get(name)

    def list(self) -> list[Context]:
        return self.store.list() + [self.default()[0]]

    def list_tls_files(self, name: str) -> dict[str, list[str]]:
        if name == DEFAULT_CONTEXT:
            files = self.default()[1]
            return {DOCKER_ENDPOINT: sorted(files)} if files else {}
        return self.store.list_tls_files(name)

    def get_tls_data(self, name: str, endpoint: str) -> dict[str, bytes]:
        if name == DEFAULT_CONTEXT:
            return self.default()[1] if endpoint == DOCKER_ENDPOINT else {}
        return self.store.get_tls_data(name, endpoint)

    def storage_info(self, name: str) -> dict[str, str]:
        if name == DEFAULT_CONTEXT:
            return {"MetadataPath": IN_MEMORY, "TLSPath": IN_MEMORY}
        return self.store.storage_info(name)
