"""The hard limits on the deployed request path, and the stage's token-bucket throttle.

The numbers are AWS's published quotas, not ours:

- API Gateway REST API payload: 10 MB (10,485,760 bytes); a larger request is refused by
  API Gateway itself, before WAF or the integration see it;
- API Gateway integration timeout: 29 s (``504 Endpoint request timed out``);
- Lambda synchronous invocation payload: 6 MB for the request (the whole event JSON, so
  a base64 body counts at 4/3 of its size: about 4.5 MiB of binary content) and 6 MB + 100
  bytes for the response (Lambda: ``RequestEntityTooLargeException`` at 6,291,456 bytes;
  ``Response payload size exceeded maximum allowed payload size (6291556 bytes)``).

The throttle is a token bucket per method (API Gateway's stage ``*/*`` method settings
apply to each method): ``burst`` tokens, refilled at ``rate`` per second; a request
finding the bucket empty is refused with ``429 Too Many Requests``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

API_PAYLOAD_LIMIT = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_S = 29.0
LAMBDA_REQUEST_LIMIT = 6 * 1024 * 1024
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024 + 100


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 0:
            raise ValueError("throttle rate must be positive and burst non-negative")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """One request: True if admitted, False if throttled."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
