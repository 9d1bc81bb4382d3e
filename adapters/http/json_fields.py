"""Numbers in JSON bodies are JSON numbers: every numeric field of a request body is one of
these, so the rule lives in one place.

marshmallow's `Float` takes the string "5" as 5.0 (and `Integer` does too unless strict), so
`"threshold": "5"` used to be stored as a number: a client bug passed silently, and what the
API accepted differed from what its OpenAPI document says. Booleans, which Python counts as
integers, are refused as well. (Query parameters arrive as text and keep the plain fields.)"""

from __future__ import annotations

from marshmallow import fields


class JsonNumber(fields.Float):
    """A JSON number (integer or not, never NaN or infinite), given back as a float."""

    default_error_messages = {"invalid": "Not a valid number (a JSON number, not a string)."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("allow_nan", False)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonInteger(fields.Integer):
    """A JSON integer: not a string of digits, not 5.0, not true."""

    default_error_messages = {"invalid": "Not a valid integer (a JSON integer, not a string)."}

    def __init__(self, **kwargs) -> None:
        kwargs["strict"] = True
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)
