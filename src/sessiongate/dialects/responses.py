"""``Response``: Litestar's response, sent by a short path when it asks for nothing that path leaves out.

Litestar turns a handler's ``Response`` into an ``ASGIResponse``: a header structure that lowercases and encodes each
header, looks each default up with a ``KeyError`` raised and caught, and an object whose call sends the answer in four
awaited steps. For a dialect's answer (a JSON body, a few headers, a ``Set-Cookie`` written as text) that was about
as much work as checking the session itself. This class encodes the body with the same serializer and sends the same
two ASGI messages, with the same headers in the same order, itself; for anything else it is Litestar's ``Response``
unchanged, and ``tests/unit/test_responses.py`` holds the two paths to the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from litestar import Response as LitestarResponse
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.serialization import get_serializer
from litestar.utils.helpers import get_enum_string_value

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.enums import OpenAPIMediaType
    from litestar.response.base import ASGIResponse
    from litestar.types import (
        ASGIApp,
        Receive,
        ResponseCookies,
        ResponseHeaders,
        Scope,
        Send,
        TypeEncodersMap,
    )

__all__ = ("Response",)

T = TypeVar("T")

_JSON = MediaType.JSON.value
_CONTENT_TYPE, _CONTENT_LENGTH = b"content-type", b"content-length"
_NO_BODY_STATUSES = frozenset({204, 304})


class Response(LitestarResponse[T]):
    """Litestar's ``Response``; a dialect's handlers return this one (``from sessiongate.dialect import Response``).

    The short path is taken when the answer has a body its status allows, no cookie objects (dialects write their
    ``Set-Cookie`` headers themselves), no background task, and is not a ``HEAD`` answer: exactly what Litestar would
    send (its type encoders, the route's and its own, merged as Litestar merges them), sent directly.

    Attributes:
        names_media_type: Whether the answer says its ``Content-Type``. Litestar names one for every answer that may
            have a body; a subclass that sets this false sends none (a vendor whose empty answers have none).
    """

    __slots__ = ()

    names_media_type: ClassVar[bool] = True

    def __init__(
        self,
        content: T,
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: ResponseCookies | None = None,
        encoding: str = "utf-8",
        headers: ResponseHeaders | None = None,
        media_type: MediaType | OpenAPIMediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> None:
        # Litestar's own assignments, with ``collections.abc.Mapping`` in place of ``typing.Mapping``, whose
        # isinstance runs two Python-level hooks; the unit tests hold every attribute to Litestar's.
        self.content = content
        self.background = background
        self.cookies: list[Cookie] = (
            [Cookie(key=key, value=value) for key, value in cookies.items()]
            if isinstance(cookies, Mapping)
            else list(cookies or [])
        )
        self.encoding = encoding
        self.headers: dict[str, Any] = (
            dict(headers) if isinstance(headers, Mapping) else {h.name: h.value for h in headers or {}}
        )
        self.media_type = media_type
        self.status_code = status_code
        self.response_type_encoders = {**(self.type_encoders or {}), **(type_encoders or {})}

    def to_asgi_response(  # type: ignore[override]  # the short path's answer is an ASGI app, not an ASGIResponse
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIApp | ASGIResponse:
        """The answer to send: :class:`EncodedAnswer` on the short path, else Litestar's ``ASGIResponse``."""
        status = self.status_code or status_code or 200
        if (
            not self.names_media_type
            or app is not None
            or background is not None
            or self.background is not None
            or cookies  # the route's own cookies: a list, empty unless the route declares some
            or self.cookies
            or encoded_headers is not None
            or is_head_response
            or status < 200  # informational: no body, as Litestar decides it
            or status in _NO_BODY_STATUSES
        ):
            response = super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
            if not self.names_media_type and "content-type" in response.headers:
                del response.headers["content-type"]
            return response
        kind = get_enum_string_value(self.media_type or media_type or _JSON)
        own = self.response_type_encoders  # merged over the route's as Litestar merges them; no copy when empty
        encoders = {**type_encoders, **own} if type_encoders and own else (own or type_encoders)
        body = self.render(self.content, kind, get_serializer(encoders))
        merged = {**headers, **self.headers} if headers else self.headers
        sent = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in merged.items()]
        names = {name for name, _ in sent}
        if _CONTENT_TYPE not in names:
            text = f"{kind}; charset={self.encoding}" if kind.startswith("text/") else kind
            sent.append((_CONTENT_TYPE, text.encode("latin-1")))
        if _CONTENT_LENGTH not in names:
            sent.append((_CONTENT_LENGTH, str(len(body)).encode("latin-1")))
        return EncodedAnswer(status, sent, body)


class EncodedAnswer:
    """An answer whose status, headers and body are already bytes: the two ASGI messages and nothing else."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head, then the whole body."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
