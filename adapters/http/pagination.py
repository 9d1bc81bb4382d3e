"""Query arguments and envelopes shared by every cursor-paginated list."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from application.pagination import MAX_LIMIT


class PageQuerySchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"page size, 1–{MAX_LIMIT}"},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=validate.Length(max=2000),
        metadata={"description": "`next_cursor` of the previous page"},
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                allow_none=True,
                metadata={"description": "pass as `cursor` for the next page; null at the end"},
            ),
        },
    )
