"""Strict JSON request bodies, and msgspec's validation wording turned into sentences naming the member.

Litestar converts bodies non-strictly (``"true"`` becomes ``True``), which a contract with typed members must
not do, so dialects read bodies through :func:`json_body`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from sessiongate.core.errors import InvalidRequest, UnsupportedMediaType

__all__ = ("NESTED_TOO_DEEPLY", "humanize", "json_body")

T = TypeVar("T")
NESTED_TOO_DEEPLY = "request body is nested too deeply"
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


async def json_body(request: Request[Any, Any, Any], model: type[T]) -> T:
    """The request body decoded strictly into ``model``.

    Raises:
        UnsupportedMediaType: the body is not declared as JSON.
        InvalidRequest: no body, malformed JSON (unpaired surrogates included), JSON nested deeper than the decoder
            goes, or a member that does not fit ``model`` (named in the message).
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if body and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType("unsupported media type")
    if not body.strip():
        raise InvalidRequest("request body is required")
    try:
        return msgspec.json.decode(body, type=model, strict=True)
    except msgspec.ValidationError as exc:
        message, field = humanize(str(exc))
        raise InvalidRequest(message, field=field) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest("invalid JSON body") from exc
    except RecursionError as exc:
        # msgspec descends one level of the interpreter's stack per level of nesting, members it skips included:
        # about a thousand levels exhaust it, which a body of a few kilobytes reaches.
        raise InvalidRequest(NESTED_TOO_DEEPLY) from exc


_BOUNDS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}


def humanize(message: str, key: str | None = None) -> tuple[str, str | None]:
    """A sentence naming the member, and the member, from msgspec's wording.

    ``Expected `str`, got `int` - at `$.identifier``` gives ``("identifier must be a string", "identifier")``.
    """
    text, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".") or key
    name = path or "request body"
    if m := re.match(r"Object missing required field `([^`]+)`", text):
        field = f"{path}.{m.group(1)}" if path else m.group(1)
        return f"{field} is required", field
    if m := re.match(r"Expected `\w+` of length >= (\d+)", text):
        return (
            f"{name} must not be empty" if m.group(1) == "1" else f"{name} must be at least {m.group(1)} characters"
        ), path
    if m := re.match(r"Expected `\w+` of length <= (\d+)", text):
        return f"{name} must be at most {m.group(1)} characters", path
    if m := re.match(r"Expected `(\w+)`(?: \| `null`)?, got `\w+`", text):
        return f"{name} must be {_KINDS.get(m.group(1), m.group(1))}", path
    if text.startswith("Expected `str` matching regex"):
        return f"{name} has an invalid format", path
    if text.startswith("Invalid enum value"):
        return f"{name} is not one of the allowed values", path
    if m := re.match(r"Expected `\w+` ([<>]=?) (\S+)", text):
        return f"{name} must be {_BOUNDS[m.group(1)]} {m.group(2)}", path
    if m := re.match(r"Object contains unknown field `([^`]+)`", text):
        field = f"{path}.{m.group(1)}" if path else m.group(1)
        return f"{field} is not allowed", field
    return f"{name}: {text}", path
