"""Make moto's SRP challenge name the user as Cognito does.

Cognito's ``PASSWORD_VERIFIER`` challenge carries ``USER_ID_FOR_SRP``, the user's
username (the internal username when a user signs in by an alias); a client computes the
password claim with it and sends it back as ``USERNAME``. moto 5 puts the user's internal
id (a UUID) there instead and then refuses it back (``UserNotFoundException``), so a
standard browser client (amazon-cognito-identity-js, which follows Cognito) cannot sign
in; pycognito happened to send ``USERNAME`` instead. :func:`srp_user_id_is_the_username`
rewrites ``USER_ID_FOR_SRP`` to the username the challenge already names, which is what
Cognito sends for this pool (users sign in with their username; no aliases). It changes
nothing else. Shown by the browser tests' sign-in (tests/browser).
"""

from __future__ import annotations

import functools
from typing import Any

_INSTALLED = False


def srp_user_id_is_the_username() -> bool:
    """Install the fix, process-wide and idempotent; False when moto is not importable."""
    global _INSTALLED
    try:
        from moto.cognitoidp.models import CognitoIdpBackend
    except ImportError:
        return False
    if _INSTALLED:
        return True
    original = CognitoIdpBackend.initiate_auth

    @functools.wraps(original)
    def initiate_auth(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        parameters = result.get("ChallengeParameters") if isinstance(result, dict) else None
        if result.get("ChallengeName") == "PASSWORD_VERIFIER" and parameters:
            parameters["USER_ID_FOR_SRP"] = parameters.get("USERNAME")
        return result

    CognitoIdpBackend.initiate_auth = initiate_auth  # type: ignore[method-assign]
    _INSTALLED = True
    return True
