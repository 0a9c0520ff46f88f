"""Redaction: credentials never reach a report, whatever text carries them."""

from __future__ import annotations

from raycheck.redact import redact, redact_text


def test_tokens_headers_and_url_passwords_are_masked(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-9f8e7d6c5b")
    text = ("Authorization: Bearer eyJhbGciOi.abc.def; token: s3cr3t-value client-key-data: LS0tLS1CRUdJTg== "
            "https://admin:hunter22@api.example:6443/ and the env value tok-9f8e7d6c5b")
    masked = redact_text(text)
    for secret in ("eyJhbGciOi", "s3cr3t-value", "LS0tLS1CRUdJTg", "hunter22", "tok-9f8e7d6c5b"):
        assert secret not in masked, masked
    assert "Authorization: Bearer ***" in masked and "https://admin:***@api.example" in masked


def test_nested_values_are_redacted_and_plain_text_kept():
    report = {"checks": [{"message": "password=abc123 on ray-gpu-head-svc", "n": 3}]}
    assert redact(report) == {"checks": [{"message": "password=*** on ray-gpu-head-svc", "n": 3}]}
    assert redact_text("ray-gpu-head-svc.ray.svc.cluster.local -> 10.244.0.10") == \
        "ray-gpu-head-svc.ray.svc.cluster.local -> 10.244.0.10"
