"""Record and patient ids in the path that are not the service's format are a 4xx.

Non-ASCII, percent-encoded UTF-8 and NUL ids on every record route answer a 4xx with the
error body, never a 500 (the other routes: ``tests/app/test_clear_errors.py``).
"""

from __future__ import annotations

import pytest
from hub_testkit import ODD_IDS, assert_refused_clearly
from records_testkit import RecordsHarness

RECORD_ROUTES = [
    ("GET", "/records/{id}"),
    ("GET", "/records/{id}/content"),
    ("GET", "/records/{id}/versions"),
    ("POST", "/records/{id}/share"),
    ("DELETE", "/records/{id}/versions/1"),
    ("GET", "/patients/{id}/records"),
]


@pytest.mark.parametrize("method,template", RECORD_ROUTES)
def test_odd_record_and_patient_ids_are_a_4xx(
    records: RecordsHarness, method: str, template: str
) -> None:
    for odd in ODD_IDS:
        path = template.replace("{id}", odd)
        response = records.client.request(method, path, headers=records.headers("dr-lead"), json={})
        assert_refused_clearly(response, f"{method} {path}")
