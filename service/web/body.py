"""The request body as bytes, for `$assess` and CDS Hooks alike."""

from __future__ import annotations

from flask import request
from gunicorn.http.errors import ParseException

from service.errors import InvalidRequest


def request_body() -> bytes:
    """A malformed body (a bad chunk size, say) is found only as it is read, inside the view,
    where gunicorn's parser error would otherwise be a 500: it is a 400."""
    try:
        return request.get_data(cache=False)
    except ParseException as exc:
        raise InvalidRequest.single(
            "structure", f"the request body is malformed ({type(exc).__name__})"
        ) from None
