"""TLS config validation and bearer-token checks shared by the receivers."""

from __future__ import annotations

import os
import ssl

import pytest

from gensight.processor.receive.tls import AuthConfig, BearerAuthenticator, TlsConfig


def test_valid_tls_config_builds_a_server_context(certs):
    cfg = TlsConfig(str(certs.server_cert), str(certs.server_key))
    cfg.validate("receivers.http.tls")
    assert cfg.server_ssl_context().verify_mode == ssl.CERT_NONE


def test_client_ca_switches_on_mutual_tls(certs):
    ctx = TlsConfig(str(certs.server_cert), str(certs.server_key), str(certs.ca_cert)).server_ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_missing_key_file_names_the_key(certs):
    with pytest.raises(ValueError, match=r"receivers.grpc.tls.key_file: file not found: /nope.key"):
        TlsConfig(str(certs.server_cert), "/nope.key").validate("receivers.grpc.tls")


def test_missing_client_ca_names_the_key(certs):
    with pytest.raises(ValueError, match=r"tls.client_ca_file"):
        TlsConfig(str(certs.server_cert), str(certs.server_key), "/nope-ca.pem").validate()


def test_directory_instead_of_file_is_refused(tmp_path, certs):
    with pytest.raises(ValueError, match="tls.cert_file: not a regular file"):
        TlsConfig(str(tmp_path), str(certs.server_key)).validate()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_refused(tmp_path, certs):
    f = tmp_path / "key.pem"
    f.write_text("x")
    f.chmod(0)
    with pytest.raises(ValueError, match="not readable"):
        TlsConfig(str(certs.server_cert), str(f)).validate()


def test_key_not_matching_the_certificate_is_refused(certs):
    with pytest.raises(ValueError, match="cannot load certificate/key"):
        TlsConfig(str(certs.server_cert), str(certs.client_key)).validate()


def test_garbage_certificate_is_refused(tmp_path, certs):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValueError, match="tls: cannot load"):
        TlsConfig(str(bad), str(certs.server_key)).validate()


def test_auth_off_by_default():
    assert not AuthConfig().enabled and AuthConfig().authenticator() is None


@pytest.mark.parametrize(
    ("header", "ok"),
    [("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer  s3cret ", True), ("Bearer other", True),
     ("Bearer wrong", False), ("Basic s3cret", False), ("s3cret", False), ("Bearer", False), ("", False), (None, False),
     ("Bearer s3cret\udcff", False)],
)
def test_bearer_check(header, ok):
    assert BearerAuthenticator(("s3cret", "other")).check(header) is ok


def test_token_file_allows_rotation_and_comments(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# comment\n\nold\nnew\n")
    auth = AuthConfig(bearer_tokens=("inline",), bearer_token_file=str(f)).authenticator()
    assert auth is not None
    assert all(auth.check(f"Bearer {t}") for t in ("old", "new", "inline"))
    assert not auth.check("Bearer # comment")


def test_empty_token_file_is_refused(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# nothing\n")
    with pytest.raises(ValueError, match="auth.bearer_token_file: no token"):
        AuthConfig(bearer_token_file=str(f)).validate()


def test_token_with_whitespace_is_refused():
    with pytest.raises(ValueError, match=r"auth.bearer_tokens\[0\]: must not contain whitespace"):
        AuthConfig(bearer_tokens=("a b",)).validate()
