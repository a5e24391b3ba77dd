"""``existing``, the find in the provisioners' find-or-create: only the resource's own
not-found codes mean "not there" (and so "create it"); any other answer from AWS, a
refusal above all, is raised rather than taken for absence."""

from __future__ import annotations

from typing import NoReturn

import pytest
from botocore.exceptions import ClientError

from infra.emulator.provision import existing


def answering(code: str) -> NoReturn:
    raise ClientError({"Error": {"Code": code, "Message": "synthetic"}}, "DescribeThing")


def test_what_is_found_is_returned() -> None:
    assert existing(lambda: {"Name": "hub-p1-thing"}, "ThingNotFound") == {"Name": "hub-p1-thing"}


def test_one_of_its_not_found_codes_means_not_there() -> None:
    assert existing(lambda: answering("ThingNotFound"), "OtherNotFound", "ThingNotFound") is None


@pytest.mark.parametrize("code", ["AccessDenied", "ThrottlingException", "NotFoundException"])
def test_any_other_error_is_raised_not_taken_for_absence(code: str) -> None:
    with pytest.raises(ClientError) as raised:
        existing(lambda: answering(code), "ThingNotFound")
    assert raised.value.response["Error"]["Code"] == code
