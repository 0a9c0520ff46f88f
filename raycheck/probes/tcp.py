"""TCP probes: connect, and the HTTP/2 greeting that tells a gRPC server from a silent port.

A port that accepts connections but never speaks (a stuck proxy, a sidecar waiting for mTLS, a
half-dead head) makes ``ray.init`` wait about 30 s. The Ray Client server speaks HTTP/2 (gRPC):
after our connection preface it sends a SETTINGS frame at once. Waiting for that frame, within
the probe timeout, separates "listening and healthy" from "accepts and never answers".

A head started with ``RAY_USE_TLS=1`` speaks gRPC inside TLS, with client certificates: it drops
a plaintext preface. With the same variables set here (:class:`TlsSettings`), the greeting is
made inside TLS, as Ray's client makes it, and the head's certificate must name the host the
agents dial; without them, :func:`speaks_tls` tells a TLS port from a broken one.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Mapping

from raycheck.observation import Observation, ms

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags
SETTINGS_FRAME_TYPE = 0x04


def endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, Observation]:
    """Open a TCP connection within ``timeout``; the socket is the caller's to close."""
    start = time.monotonic()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    where = endpoint(host, port)
    try:
        sock.connect((host, port))
    except socket.timeout:
        sock.close()
        return None, Observation(False, f"no answer from {where} within {timeout:g} s (SYN dropped: "
                                 "firewall or NetworkPolicy?)", cause="timeout", elapsed_s=time.monotonic() - start)
    except OSError as exc:
        sock.close()
        elapsed = time.monotonic() - start
        if exc.errno == errno.ECONNREFUSED:
            return None, Observation(False, f"connection refused by {where} after {ms(elapsed)}",
                                     cause="refused", elapsed_s=elapsed)
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return None, Observation(False, f"{where} unreachable: {exc.strerror}", cause="timeout",
                                     elapsed_s=elapsed)
        return None, Observation(False, f"cannot connect to {where}: {exc.strerror or exc}",
                                 cause="timeout", elapsed_s=elapsed)
    elapsed = time.monotonic() - start
    return sock, Observation(True, f"{where} accepted a connection in {ms(elapsed)}", elapsed_s=elapsed)


def tcp_connect(host: str, port: int, timeout: float) -> Observation:
    """Plain reachability: does anything accept on host:port?"""
    sock, obs = connect(host, port, timeout)
    if sock is not None:
        sock.close()
    return obs


@dataclass(frozen=True)
class TlsSettings:
    """Ray's TLS variables, as Ray's client reads them: the certificate and key it presents (Ray
    uses the server pair on both sides) and the CA that signed the head's certificate."""

    cert: str | None
    key: str | None
    ca: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "TlsSettings | None":
        env = os.environ if env is None else env
        if env.get("RAY_USE_TLS", "0").lower() not in ("1", "true"):
            return None
        return cls(env.get("RAY_TLS_SERVER_CERT"), env.get("RAY_TLS_SERVER_KEY"), env.get("RAY_TLS_CA_CERT"))

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the head against the CA and presents the certificate;
        ValueError naming the variable when one is missing or unreadable."""
        for name, path in (("RAY_TLS_SERVER_CERT", self.cert), ("RAY_TLS_SERVER_KEY", self.key),
                           ("RAY_TLS_CA_CERT", self.ca)):
            if not path:
                raise ValueError(f"RAY_USE_TLS=1 but {name} is not set")
            if not os.access(path, os.R_OK):
                raise ValueError(f"RAY_USE_TLS=1 but {name}={path} is not a readable file")
        context = ssl.create_default_context(cafile=self.ca)
        context.check_hostname = False  # checked against the agents' host name below, with the SANs quoted
        context.load_cert_chain(self.cert, self.key)  # type: ignore[arg-type]
        context.set_alpn_protocols(["h2"])
        return context


def _sans(cert: dict) -> list[str]:  # type: ignore[type-arg]
    return [value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]


def name_in_sans(name: str, sans: list[str]) -> bool:
    """Whether a certificate with these subject alternative names is valid for ``name`` (RFC 6125:
    exact, or a wildcard for exactly the leftmost label; IP addresses compared as addresses)."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for san in sans:
        if address is not None:
            try:
                if ipaddress.ip_address(san) == address:
                    return True
            except ValueError:
                continue
        elif san.lower() == name.lower().rstrip(".") or (
                san.startswith("*.") and "." in name and name.lower().split(".", 1)[1] == san[2:].lower()):
            return True
    return False


def _tls_wrap(sock: socket.socket, tls: TlsSettings, server_name: str,
              where: str) -> tuple[ssl.SSLSocket | None, Observation | None]:
    """The TLS handshake with the head, as Ray's client makes it; an observation when it fails or
    the certificate does not name ``server_name``."""
    try:
        context = tls.context()
    except (ValueError, ssl.SSLError) as exc:
        return None, Observation(False, f"TLS to {where} not attempted: {exc}", cause="tls-handshake")
    try:
        wrapped = context.wrap_socket(sock, server_hostname=None if _is_ip(server_name) else server_name)
    except ssl.SSLCertVerificationError as exc:
        return None, Observation(False, f"TLS to {where}: the head's certificate does not verify against "
                                 f"RAY_TLS_CA_CERT={tls.ca}: {exc.verify_message}", cause="tls-handshake")
    except (ssl.SSLError, OSError) as exc:
        return None, Observation(False, f"TLS handshake with {where} failed: {_tls_reason(exc)}", cause="tls-handshake")
    sans = _sans(wrapped.getpeercert() or {})
    if not name_in_sans(server_name, sans):
        wrapped.close()
        shown = ", ".join(sans) or "none"
        return None, Observation(False, f"TLS to {where}: the head's certificate names {shown}, not {server_name}, "
                                 "the host the client dials: Ray Client refuses it", cause="tls-name",
                                 figures={"tls_sans": shown, "tls_name": server_name})
    return wrapped, None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _tls_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if reason == "WRONG_VERSION_NUMBER":
        return "WRONG_VERSION_NUMBER (the port answers in plaintext: the head does not use TLS)"
    return str(reason)


def speaks_tls(host: str, port: int, timeout: float) -> str | None:
    """Whether the port completes a TLS handshake (no verification): its TLS version and ALPN, or None."""
    sock, _ = connect(host, port, timeout)
    if sock is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with context.wrap_socket(sock) as wrapped:
            return f"{wrapped.version()}, ALPN {wrapped.selected_alpn_protocol() or 'none'}"
    except (ssl.SSLError, OSError):
        return None
    finally:
        sock.close()


def grpc_greeting(host: str, port: int, timeout: float, tls: TlsSettings | None = None,
                  server_name: str | None = None) -> Observation:
    """Connect and exchange HTTP/2 prefaces; ok only when the server answers with SETTINGS.

    With ``tls``, inside TLS, and the head's certificate must name ``server_name`` (default ``host``)."""
    start = time.monotonic()
    sock, obs = connect(host, port, timeout)
    if sock is None:
        return obs
    where = endpoint(host, port)
    connected = obs.elapsed_s
    if tls is not None:
        wrapped, failure = _tls_wrap(sock, tls, server_name or host, where)
        if failure is not None:
            sock.close()
            return Observation(False, failure.message, failure.cause, failure.figures,
                               elapsed_s=time.monotonic() - start)
        assert wrapped is not None
        sock = wrapped
    try:
        sock.settimeout(max(0.05, timeout - (time.monotonic() - start)))
        sock.sendall(HTTP2_PREFACE + EMPTY_SETTINGS_FRAME)
        header = b""
        while len(header) < 9:
            chunk = sock.recv(9 - len(header))
            if not chunk:
                break
            header += chunk
    except socket.timeout:
        elapsed = time.monotonic() - start
        return Observation(False, f"{where} accepted the connection in {ms(connected)} but sent nothing "
                           f"within {timeout:g} s: not a live Ray Client (gRPC) server", cause="silent",
                           elapsed_s=elapsed)
    except ssl.SSLError as exc:  # TLS 1.3: the head judges the client's certificate after the handshake
        elapsed = time.monotonic() - start
        return Observation(False, f"TLS with {where}: the head refused this client: {_tls_reason(exc)}",
                           cause="tls-handshake", elapsed_s=elapsed)
    except OSError as exc:
        elapsed = time.monotonic() - start
        return Observation(False, f"{where} accepted the connection, then reset it: {exc.strerror or exc}",
                           cause="closed", elapsed_s=elapsed)
    finally:
        sock.close()
    elapsed = time.monotonic() - start
    if len(header) < 9 and tls is not None:
        return Observation(False, f"{where} completed the TLS handshake, then closed the connection without an "
                           f"HTTP/2 greeting: the head refuses this client's certificate ({tls.cert})",
                           cause="tls-handshake", elapsed_s=elapsed)
    if len(header) < 9:
        return Observation(False, f"{where} accepted the connection, then closed it without an HTTP/2 "
                           "greeting", cause="closed", elapsed_s=elapsed)
    if header[3] != SETTINGS_FRAME_TYPE:
        return Observation(False, f"{where} answered, but not with HTTP/2 (first bytes {header[:9]!r}): "
                           "another service holds the port", cause="not-grpc", elapsed_s=elapsed)
    inside = " inside TLS" if tls is not None else ""
    return Observation(True, f"{where} accepted in {ms(connected)} and answered the gRPC (HTTP/2) "
                       f"greeting{inside} in {ms(elapsed)}", elapsed_s=elapsed)
