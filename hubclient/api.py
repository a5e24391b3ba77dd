"""The hub's HTTP API as the client sees it: JSON bodies, a bearer token, typed errors.

Every request carries ``Authorization: Bearer <access token>`` from the token source
(refreshed as needed). A non-2xx answer becomes :class:`ApiError` with the service's
``{"error": {"code", "message"}}``. No request body this module sends holds record
content except :meth:`HubApi.put_record` (the service-sealed path, for FHIR documents
within the API's caps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from hubclient.errors import ApiError


class TokenSource(Protocol):
    def access_token(self) -> str: ...


class HubApi:
    """One API base URL, one token source. ``http`` may be any ``httpx.Client`` (tests pass
    FastAPI's ``TestClient``, which is one); its base URL must be the API's."""

    def __init__(self, http: httpx.Client, tokens: TokenSource):
        self.http = http
        self._tokens = tokens

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.access_token()}", **(extra or {})}

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        wanted = {k: v for k, v in (params or {}).items() if v is not None}
        response = self.http.request(
            method, path, json=json, params=wanted, headers=self._headers()
        )
        if response.status_code == 401 and self._refreshed():
            # The token was refused (revoked, or older than the service accepts): once more
            # with a fresh one; a second 401 is the answer.
            response = self.http.request(
                method, path, json=json, params=wanted, headers=self._headers()
            )
        return _answer(response), response.headers

    def _refreshed(self) -> bool:
        refresh = getattr(self._tokens, "refresh", None)
        return bool(refresh()) if callable(refresh) else False

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)[0]

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)[0]

    def delete(self, path: str, body: Any = None) -> Any:
        return self.call("DELETE", path, json=body)[0]

    def put_record(self, path: str, content: bytes, headers: Mapping[str, str]) -> Any:
        """A record the service seals itself (POST with the raw body)."""
        response = self.http.post(path, content=content, headers=self._headers(headers))
        return _answer(response)

    def get_content(self, path: str, params: Mapping[str, Any]) -> httpx.Response:
        wanted = {k: v for k, v in params.items() if v is not None}
        response = self.http.get(path, params=wanted, headers=self._headers())
        if response.status_code >= 300:
            _answer(response)
        return response


def _answer(response: httpx.Response) -> Any:
    if response.status_code < 300:
        return response.json() if response.content else None
    code, message = "http_error", f"HTTP {response.status_code}"
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    raise ApiError(response.status_code, code, message)
