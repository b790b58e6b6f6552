"""Passwords, login and session tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.auth import (
    InvalidCredentials,
    InvalidToken,
    authenticate,
    decode_token,
    hash_password,
    issue_token,
    verify_password,
)
from core.db.models import Role
from tests.factories import DEFAULT_PASSWORD, NOW, make_user

SECRET = "test-secret-0123456789abcdef0123456789"
SESSION_ID = "a-session-id-0123456789"


def test_a_password_verifies_against_its_hash_only() -> None:
    stored = hash_password("s3cret-pass")
    assert stored.startswith("$argon2id$")
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)
    assert not verify_password("s3cret-pass", "not-a-hash")


def test_authenticate_returns_the_user(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        user = make_user(session, "alice")
        assert authenticate(session, " alice ", DEFAULT_PASSWORD).id == user.id


@pytest.mark.parametrize(
    ("username", "password", "disabled", "message"),
    [
        ("alice", "wrong-password", False, "wrong username or password"),
        ("nobody", DEFAULT_PASSWORD, False, "wrong username or password"),
        ("alice", DEFAULT_PASSWORD, True, "this account is disabled"),
    ],
)
def test_authenticate_refuses(
    sessions: sessionmaker[Session], username: str, password: str, disabled: bool, message: str
) -> None:
    with sessions() as session:
        make_user(session, "alice", disabled=disabled)
        with pytest.raises(InvalidCredentials, match=message) as caught:
            authenticate(session, username, password)
        assert caught.value.code == "unauthenticated"


def test_a_token_carries_the_user_and_role(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        user = make_user(session, "op", role=Role.OPERATOR)
    token = issue_token(user, SECRET, session_id=SESSION_ID, ttl_secs=600, now=NOW)
    assert (token.token_type, token.role, token.expires_in) == ("bearer", "operator", 600)
    claims = decode_token(token.access_token, SECRET, now=NOW + timedelta(seconds=599))
    assert (claims.user_id, claims.role) == (user.id, Role.OPERATOR)
    assert claims.expires_at == NOW + timedelta(seconds=600)


def test_expired_forged_and_garbage_tokens_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        user = make_user(session)
    token = issue_token(user, SECRET, session_id=SESSION_ID, ttl_secs=600, now=NOW).access_token
    with pytest.raises(InvalidToken, match="expired"):
        decode_token(token, SECRET, now=NOW + timedelta(seconds=600))
    with pytest.raises(InvalidToken, match="invalid"):
        decode_token(token, "another-secret-0123456789abcdef0123", now=NOW)
    with pytest.raises(InvalidToken):
        decode_token("not.a.jwt", SECRET)
