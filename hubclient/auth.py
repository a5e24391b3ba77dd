"""Signing a doctor in to the hub's Cognito user pool, and keeping the tokens.

Sign-in is what Cognito's own SDKs do: ``USER_SRP_AUTH`` (the password never leaves the
device; pycognito's ``AWSSRP`` computes Cognito's SRP variant), then the TOTP challenge
(``SOFTWARE_TOKEN_MFA``) answered with a code from the doctor's authenticator app. The
Cognito client is unsigned: a doctor needs no AWS credentials.

Tokens are kept in one JSON file readable by the owner only (``0600`` in a ``0700``
directory), written atomically; a token file other users can read is refused, as ssh
refuses a private key. ``TokenSession`` hands out a valid access token, refreshing it
(``REFRESH_TOKEN_AUTH``) a minute before it expires, and saves the new one.

Guarantees: nothing here logs or prints a token, a password or a TOTP secret.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from app.crypto.totp import totp_now as totp_now  # the one generator (its callers' name)
from hubclient.errors import SignInError, UsageError

REGION = "ap-east-1"
REFRESH_MARGIN_S = 60
# The hub refuses access tokens issued longer ago than its app client's token validity
# (HUB_MAX_TOKEN_AGE_SECONDS, 15 minutes), whatever expiry the issuer wrote in them.
MAX_TOKEN_AGE_S = 15 * 60


@dataclass(frozen=True, repr=False)
class Tokens:
    """One signed-in doctor: where they signed in, and their tokens (``repr`` hides them)."""

    username: str
    pool_id: str
    client_id: str
    api_url: str
    access_token: str
    id_token: str
    refresh_token: str
    expires_at: float
    cognito_endpoint: str | None = None

    def __repr__(self) -> str:
        return f"Tokens(username={self.username!r}, expires_at={self.expires_at})"


class TokenStore:
    """The token file: owner-only, atomically replaced."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def save(self, tokens: Tokens) -> None:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        tmp = directory / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(asdict(tokens), out)
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load(self) -> Tokens | None:
        if not self.path.exists():
            return None
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"{self.path} is readable by other users; delete it and sign in again")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Tokens(**data)
        except (ValueError, TypeError):
            raise UsageError(
                f"{self.path} is not a token file; delete it and sign in again"
            ) from None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _expiry(access_token: str) -> float:
    """When to stop using an access token: its ``exp``, or 15 minutes after ``iat`` if that
    comes first (read only to know when to refresh; the service verifies the token)."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expiry = float(claims["exp"])
        if "iat" in claims:
            expiry = min(expiry, float(claims["iat"]) + MAX_TOKEN_AGE_S)
        return expiry
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + 300


class CognitoAuth:
    """SRP and TOTP sign-in, and refresh, against one user pool and app client."""

    def __init__(
        self,
        pool_id: str,
        client_id: str,
        *,
        api_url: str,
        region: str = REGION,
        endpoint_url: str | None = None,
        client: Any = None,
    ):
        self.pool_id = pool_id
        self.client_id = client_id
        self.api_url = api_url
        self.endpoint_url = endpoint_url
        if client is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            # A doctor has no AWS credentials: these calls are public, signed by SRP.
            client = boto3.client(
                "cognito-idp",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(signature_version=UNSIGNED),
            )
        self._cognito = client

    def sign_in(
        self,
        username: str,
        password: str,
        totp_code: Callable[[], str],
        *,
        enrol: Callable[[str], str] | None = None,
    ) -> Tokens:
        """SRP, then the TOTP challenge (``totp_code`` is asked only if Cognito asks). On a
        first sign-in Cognito asks to set up an authenticator (``MFA_SETUP``): ``enrol`` is
        given the new secret (to put into the doctor's authenticator app) and returns the
        first code it shows; without ``enrol`` that is a ``SignInError``.

        Raises:
            SignInError: refused, or a challenge this client does not answer.
        """
        from botocore.exceptions import ClientError
        from pycognito.aws_srp import AWSSRP

        # A code read at the end of its 30 s window can reach Cognito in the next one, and a
        # refused challenge ends the session: the whole sign-in is tried once more, asking
        # for a fresh code (an authenticator app shows the next one by then).
        for attempt in range(2):
            try:
                srp = AWSSRP(username, password, self.pool_id, self.client_id, client=self._cognito)
                parameters = srp.get_auth_params()
                answer = self._cognito.initiate_auth(
                    ClientId=self.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=parameters
                )
                for _ in range(3):
                    challenge = answer.get("ChallengeName")
                    if challenge is None or "AuthenticationResult" in answer:
                        break
                    answer = self._answer(answer, username, srp, parameters, totp_code, enrol)
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "refused")
                if code == "CodeMismatchException" and attempt == 0:
                    continue
                raise SignInError(f"sign-in refused ({code})") from None
        if "AuthenticationResult" not in answer:
            challenge = answer.get("ChallengeName", "unknown")
            raise SignInError(
                f"sign-in needs a challenge this client does not answer ({challenge})"
            )
        result = answer["AuthenticationResult"]
        return Tokens(
            username=username,
            pool_id=self.pool_id,
            client_id=self.client_id,
            api_url=self.api_url,
            access_token=result["AccessToken"],
            id_token=result["IdToken"],
            refresh_token=result["RefreshToken"],
            expires_at=_expiry(result["AccessToken"]),
            cognito_endpoint=self.endpoint_url,
        )

    def _answer(
        self,
        answer: dict[str, Any],
        username: str,
        srp: Any,
        parameters: dict[str, str],
        totp_code: Callable[[], str],
        enrol: Callable[[str], str] | None,
    ) -> Any:
        challenge = answer["ChallengeName"]
        respond = self._cognito.respond_to_auth_challenge
        if challenge == "PASSWORD_VERIFIER":
            return respond(
                ClientId=self.client_id,
                ChallengeName=challenge,
                ChallengeResponses=srp.process_challenge(answer["ChallengeParameters"], parameters),
            )
        if challenge == "SOFTWARE_TOKEN_MFA":
            return respond(
                ClientId=self.client_id,
                ChallengeName=challenge,
                Session=answer["Session"],
                ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": totp_code()},
            )
        if challenge == "MFA_SETUP":
            if enrol is None:
                raise SignInError(
                    "this account has no authenticator app yet; sign in interactively once "
                    "to enrol one"
                )
            associated = self._cognito.associate_software_token(Session=answer["Session"])
            session = associated.get("Session", answer["Session"])
            verified = self._cognito.verify_software_token(
                Session=session,
                UserCode=enrol(str(associated["SecretCode"])),
                FriendlyDeviceName="hub-doctor",
            )
            return respond(
                ClientId=self.client_id,
                ChallengeName=challenge,
                Session=verified.get("Session", session),
                ChallengeResponses={"USERNAME": username},
            )
        raise SignInError(f"sign-in needs a challenge this client does not answer ({challenge})")

    def refresh(self, tokens: Tokens) -> Tokens:
        """New access and id tokens from the refresh token (the refresh token is kept)."""
        from botocore.exceptions import ClientError

        try:
            answer = self._cognito.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "refused")
            raise SignInError(
                f"the session could not be refreshed ({code}); sign in again"
            ) from None
        result = answer["AuthenticationResult"]
        return replace(
            tokens,
            access_token=result["AccessToken"],
            id_token=result.get("IdToken", tokens.id_token),
            refresh_token=result.get("RefreshToken", tokens.refresh_token),
            expires_at=_expiry(result["AccessToken"]),
        )


class TokenSession:
    """A valid access token on demand, refreshed and saved when it is about to expire."""

    def __init__(
        self,
        tokens: Tokens,
        *,
        store: TokenStore | None = None,
        auth: CognitoAuth | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._tokens = tokens
        self._store = store
        self._auth = auth
        self._clock = clock

    @property
    def tokens(self) -> Tokens:
        return self._tokens

    def access_token(self) -> str:
        if self._auth is not None and self._tokens.expires_at - self._clock() < REFRESH_MARGIN_S:
            self.refresh()
        return self._tokens.access_token

    def refresh(self) -> bool:
        """Refresh now (the service refused the token); False when this session cannot."""
        if self._auth is None:
            return False
        self._tokens = self._auth.refresh(self._tokens)
        if self._store is not None:
            self._store.save(self._tokens)
        return True


class StaticToken:
    """An access token handed in as is (tests, scripts that sign in themselves)."""

    def __init__(self, token: str):
        self._token = token

    def access_token(self) -> str:
        return self._token
