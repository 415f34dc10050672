"""The Sandbox: every simulator served by uvicorn on 127.0.0.1 in background threads."""

from __future__ import annotations

import asyncio
import datetime as _dt
import ipaddress
import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._app import Simulator
from ._company import SYSTEMS, Company, make_company
from ._knobs import Knobs

__all__ = ["Sandbox"]


_CLASSES = {
    "entra": "_entra:Entra",
    "google_workspace": "_google:GoogleWorkspace",
    "slack": "_slack:Slack",
    "github": "_github:GitHub",
    "scim": "_scim:ScimApp",
    "okta": "_okta:Okta",
    "aws": "_aws:Aws",
}


def _simulator_class(system: str) -> type[Simulator]:
    import importlib

    module, _, name = _CLASSES[system].partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _write_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 (Entra must be https for msal)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offboard sandbox")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sandbox-ca.pem", directory / "sandbox-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def _write_secret(directory: Path, name: str, value: str) -> str:
    path = directory / name
    path.write_text(value)
    os.chmod(path, 0o600)
    return f"file:{path}"


class Sandbox:
    """Serve the simulated systems; use as a context manager or call start()/stop().

    ``company`` (or ``people``/``seed``/``company_options``) decides the seeded data;
    ``latency_ms`` and ``knobs`` set every simulator's knobs; ``port_base`` picks fixed
    ports (port_base, port_base+1, ... in SYSTEMS order) instead of free ones; ``scim_profile``
    makes the SCIM application behave as that application (``_scim_profiles``).
    """

    def __init__(
        self,
        people: int = 50,
        *,
        seed: int = 0,
        company: Company | None = None,
        company_options: dict[str, Any] | None = None,
        systems: tuple[str, ...] = SYSTEMS,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        knobs: dict[str, Any] | None = None,
        port_base: int | None = None,
        data_dir: str | Path | None = None,
        scim_profile: str = "generic",
    ):
        unknown = [s for s in systems if s not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown sandbox system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
        self.company = company or make_company(people, seed=seed, **(company_options or {}))
        self.seed = seed
        self.systems = tuple(systems)
        self.port_base = port_base
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.data_dir = Path(data_dir) if data_dir else None
        self._sims: dict[str, Simulator] = {}
        for name in self.systems:
            k = Knobs(latency_ms=latency_ms, jitter_ms=jitter_ms)
            if knobs:
                k.update(**knobs)
            options: dict[str, Any] = {"profile": scim_profile} if name == "scim" else {}
            self._sims[name] = _simulator_class(name)(self.company, seed=seed, knobs=k, **options)
        self._servers: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self._urls: dict[str, str] = {}
        self._config: dict[str, Any] | None = None
        self.ca_file: Path | None = None

    # ----- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Bind the ports, start the servers, and wait until every one answers."""
        if self._servers:
            return self
        import uvicorn

        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="offboard-sandbox-")
            self.data_dir = Path(self._tmp.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cert, key = _write_cert(self.data_dir)
        self.ca_file = cert
        try:
            for _i, name in enumerate(self.systems):
                sim = self._sims[name]
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                )  # accepted sockets inherit it: no 40 ms delayed-ACK stalls
                port = 0 if self.port_base is None else self.port_base + SYSTEMS.index(name)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError as exc:
                    sock.close()
                    raise OSError(f"sandbox: cannot bind 127.0.0.1:{port} for {name}: {exc.strerror}") from None
                port = sock.getsockname()[1]
                tls = sim.scheme == "https"
                host = "localhost" if tls else "127.0.0.1"
                sim.base_url = self._urls[name] = f"{sim.scheme}://{host}:{port}"
                sim.data_dir = self.data_dir
                config = uvicorn.Config(
                    sim,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    timeout_keep_alive=30,
                    ssl_certfile=str(cert) if tls else None,
                    ssl_keyfile=str(key) if tls else None,
                    http="h11" if _no_httptools() else "auto",
                    loop="asyncio",
                    backlog=2048,
                )
                server = uvicorn.Server(config)
                thread = threading.Thread(target=_serve, args=(server, sock), name=f"sandbox-{name}", daemon=True)
                thread.start()
                self._servers[name] = server
                self._threads.append(thread)
            deadline = time.monotonic() + 15
            for name, server in self._servers.items():
                while not server.started:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"sandbox: the {name} simulator did not start within 15 s")
                    time.sleep(0.01)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server and remove the temporary data directory."""
        for server in self._servers.values():
            server.should_exit = True
            server.force_exit = True  # do not wait for idle keep-alive clients
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers.clear()
        self._threads.clear()
        self._config = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.data_dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----- access ----------------------------------------------------------------------------
    def url(self, system: str) -> str:
        """The root URL of a running simulator (scheme://host:port, no trailing slash)."""
        self._known(system)
        if system not in self._urls:
            raise RuntimeError("the sandbox is not started; call start() or use it as a context manager")
        return self._urls[system]

    def sim(self, system: str) -> Simulator:
        """The simulator object: knobs, limits, request log, account state."""
        self._known(system)
        return self._sims[system]

    def account(self, system: str, key: str) -> dict[str, Any] | None:
        """The current state of one account in one system."""
        return self.sim(system).account(key)

    def _known(self, system: str) -> None:
        if system not in self._sims:
            raise KeyError(f"unknown sandbox system {system!r}; this sandbox serves: {', '.join(self.systems)}")

    def config(self) -> dict[str, Any]:
        """An offboard config (as a dict) with a ``connectors:`` section for every served system."""
        if self._config is not None:
            return self._config
        if not self._urls or self.data_dir is None:
            raise RuntimeError("the sandbox is not started; call start() or use it as a context manager")
        secrets = self.data_dir / "secrets"
        secrets.mkdir(exist_ok=True)
        os.chmod(secrets, 0o700)
        connectors: dict[str, Any] = {}
        for name in self.systems:
            settings = self._sims[name].connector_settings(lambda n, v: _write_secret(secrets, n, v))  # type: ignore[attr-defined]
            connectors[name] = {"type": name, "settings": settings}
        people = self.data_dir / "people.json"
        people.write_text(json.dumps([p.to_dict() for p in self.company.people], indent=1))
        self._config = {
            "connectors": connectors,
            "people": [{"type": "hr_export", "settings": {"path": str(people)}}],
            "protected": self.company.protected,
        }
        return self._config

    def write_config(self, path: str | Path) -> Path:
        """Write :meth:`config` as YAML to ``path``."""
        import yaml

        path = Path(path)
        path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return path


def _no_httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return True
    return False


def _serve(server: Any, sock: socket.socket) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(server.serve(sockets=[sock]))
    finally:
        loop.close()
        sock.close()
