"""TCP probes: connect, and the HTTP/2 greeting that tells a gRPC server from a silent port.

A port that accepts connections but never speaks (a stuck proxy, a sidecar waiting for mTLS, a
half-dead head) makes ``ray.init`` wait about 30 s. The Ray Client server speaks HTTP/2 (gRPC):
after our connection preface it sends a SETTINGS frame at once. Waiting for that frame, within
the probe timeout, separates "listening and healthy" from "accepts and never answers".
"""

from __future__ import annotations

import errno
import socket
import time

from raycheck.observation import Observation, ms

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags
SETTINGS_FRAME_TYPE = 0x04


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, Observation]:
    """Open a TCP connection within ``timeout``; the socket is the caller's to close."""
    start = time.monotonic()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    where = _endpoint(host, port)
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


def grpc_greeting(host: str, port: int, timeout: float) -> Observation:
    """Connect and exchange HTTP/2 prefaces; ok only when the server answers with SETTINGS."""
    start = time.monotonic()
    sock, obs = connect(host, port, timeout)
    if sock is None:
        return obs
    where = _endpoint(host, port)
    connected = obs.elapsed_s
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
    except OSError as exc:
        elapsed = time.monotonic() - start
        return Observation(False, f"{where} accepted the connection, then reset it: {exc.strerror or exc}",
                           cause="closed", elapsed_s=elapsed)
    finally:
        sock.close()
    elapsed = time.monotonic() - start
    if len(header) < 9:
        return Observation(False, f"{where} accepted the connection, then closed it without an HTTP/2 "
                           "greeting", cause="closed", elapsed_s=elapsed)
    if header[3] != SETTINGS_FRAME_TYPE:
        return Observation(False, f"{where} answered, but not with HTTP/2 (first bytes {header[:9]!r}): "
                           "another service holds the port", cause="not-grpc", elapsed_s=elapsed)
    return Observation(True, f"{where} accepted in {ms(connected)} and answered the gRPC (HTTP/2) "
                       f"greeting in {ms(elapsed)}", elapsed_s=elapsed)
