"""The doctor's client of the Health Collaboration Hub: a Python SDK and a command line.

Records are sealed on the doctor's device and put straight to S3, and opened there: the
service decides, hands over each record version's data key wrapped for this client (HPKE
to an ephemeral key pair), issues short-lived presigned URLs and commits the manifest;
content never passes through it. The sealed-record format is the service's own
(``app.crypto``): the only code of the service this package imports (the import contract
in ``pyproject.toml`` holds it to that).

- :class:`hubclient.sdk.HubClient`: sign-in state, discovery, groups, upload (with
  progress and resume), download (verified), share, versions, shred.
- :mod:`hubclient.auth`: Cognito sign-in with SRP and TOTP, tokens kept owner-only and
  refreshed.
- ``hub-doctor`` (:mod:`hubclient.cli`): the same operations from a terminal.
"""

from hubclient.errors import ApiError, HubClientError, RecordIntegrityError, SignInError

__all__ = ["ApiError", "HubClientError", "RecordIntegrityError", "SignInError"]
