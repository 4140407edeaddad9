"""How a partner's requests leave the machine: which proxy (if any) and which CAs to trust.

The rules are curl's, which httpx follows too, so an operator's environment means here
what it means to every other tool on the host:

- ``https_proxy`` for https URLs, ``http_proxy`` for http ones, ``all_proxy`` for both;
  each also in upper case, the lower-case one winning. Upper-case ``HTTP_PROXY`` alone is
  ignored, as curl does: CGI hosts set it from a request's ``Proxy:`` header (httpoxy).
- ``no_proxy``: a comma-separated list of host names (a name matches itself and its
  subdomains, a leading dot or ``*.`` included), IP addresses, CIDR ranges, ``*`` for all;
  an entry may name a port. It applies to a configured proxy as well.
- ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace the default trust store (certifi's roots),
  as in httpx and OpenSSL; a partner's ``ca_bundle`` replaces both.

The environment is read once, by the config layer, and handed here as a mapping.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import certifi

# What the config layer copies out of the process environment for this module.
ENVIRON_KEYS = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
PROXY_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """A variable as curl reads it: lower case first, then upper case (not for http_proxy)."""
    for key in (name, name.upper()) if name != "http_proxy" else (name,):
        value = environ.get(key, "").strip()
        if value:
            return value
    return None


def _with_scheme(proxy: str) -> str:
    # "proxy:3128" means an HTTP proxy, as for curl.
    return proxy if "://" in proxy else f"http://{proxy}"


@dataclass(frozen=True)
class NoProxy:
    """A parsed ``no_proxy`` list."""

    everything: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None], ...] = ()

    @classmethod
    def parse(cls, value: str | None) -> NoProxy:
        names: list[tuple[str, int | None]] = []
        networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
        for entry in (value or "").replace(" ", ",").split(","):
            entry = entry.strip().lower()
            if not entry:
                continue
            if entry == "*":
                return cls(everything=True)
            host, port = _split_port(entry)
            try:
                networks.append((ipaddress.ip_network(host, strict=False), port))
            except ValueError:
                names.append((host.removeprefix("*").lstrip("."), port))
        return cls(False, tuple(names), tuple(networks))

    def bypasses(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.lower().strip("[]").rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(
                (host == name or host.endswith("." + name)) and want in (None, port)
                for name, want in self.names
            )
        return any(address in net and want in (None, port) for net, want in self.networks)


def _split_port(entry: str) -> tuple[str, int | None]:
    """ "host:port", "[v6]:port", or a bare host, v6 address or CIDR range."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


@dataclass(frozen=True)
class Egress:
    """One partner's way out: its proxy choice per origin and its TLS trust."""

    proxy: str | None = None  # configured for the partner; wins over the environment's
    ca_bundle: Path | None = None
    trust_env: bool = True
    environ: Mapping[str, str] = field(default_factory=dict)

    def proxy_for(self, scheme: str, host: str, port: int | None = None) -> str | None:
        """The proxy URL a request to ``scheme://host:port`` goes through, or None."""
        env = self.environ if self.trust_env else {}
        if NoProxy.parse(_env(env, "no_proxy")).bypasses(host, port or _DEFAULT_PORTS.get(scheme, 0)):
            return None
        if self.proxy:
            return _with_scheme(self.proxy)
        found = _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")
        return _with_scheme(found) if found else None

    def ssl_context(self) -> ssl.SSLContext:
        """Verification on, hostnames checked; the trust store is the partner's
        ``ca_bundle``, else the environment's, else certifi's roots (httpx's default)."""
        env = self.environ if self.trust_env else {}
        if self.ca_bundle is not None:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        if env.get("SSL_CERT_FILE"):
            return ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
        if env.get("SSL_CERT_DIR"):
            return ssl.create_default_context(capath=env["SSL_CERT_DIR"])
        return ssl.create_default_context(cafile=certifi.where())
