"""msgspec's validation wording becomes a sentence naming the member, as every dialect's 400 shows it."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import pytest

from sessiongate.dialects.bodies import humanize


class Sample(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=5)]
    code: Annotated[str, msgspec.Meta(pattern="^[a-z]+$")] = "a"
    kind: Literal["web", "ios"] = "web"
    count: Annotated[int, msgspec.Meta(ge=1)] = 1


@pytest.mark.parametrize(
    ("body", "sentence", "member"),
    [
        (b"{}", "name is required", "name"),
        (b'{"name": ""}', "name must not be empty", "name"),
        (b'{"name": "toolong"}', "name must be at most 5 characters", "name"),
        (b'{"name": 1}', "name must be a string", "name"),
        (b'{"name": "a", "code": "A1"}', "code has an invalid format", "code"),
        (b'{"name": "a", "kind": "tv"}', "kind is not one of the allowed values", "kind"),
        (b'{"name": "a", "count": 0}', "count must be at least 1", "count"),
        (b'{"name": "a", "extra": 1}', "extra is not allowed", "extra"),
    ],
)
def test_validation_errors_read_as_sentences_naming_the_member(body: bytes, sentence: str, member: str):
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(body, type=Sample)
    assert humanize(str(caught.value)) == (sentence, member)
