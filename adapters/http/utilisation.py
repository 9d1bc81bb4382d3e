"""/api/stats/utilisation: the share of the devices' time in each status per UTC day."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import json_response
from adapters.http.security import requires
from application.use_cases.utilisation import MAX_DAYS, ShowUtilisation
from domain.devices import DeviceStatus
from domain.users import Permission

blp = Blueprint("utilisation", __name__, url_prefix="/api/stats", description="Dashboard numbers")


class UtilisationQuerySchema(Schema):
    days = fields.Integer(
        load_default=14,
        validate=validate.Range(min=1, max=MAX_DAYS),
        metadata={"description": "the last this many UTC days, today included"},
    )


class DayUseSchema(Schema):
    day = fields.Date()
    device_seconds = fields.Float(metadata={"description": "device time counted that day"})
    shares = fields.Dict(
        keys=fields.String(validate=validate.OneOf([s.value for s in DeviceStatus])),
        values=fields.Float(),
        metadata={"description": "per status, its share of device_seconds (0..1); {} without"},
    )


class UtilisationSchema(Schema):
    items = fields.List(fields.Nested(DayUseSchema), metadata={"description": "oldest first"})


@blp.route("/utilisation")
class Utilisation(MethodView):
    @requires(Permission.READ)
    @blp.arguments(UtilisationQuerySchema, location="query")
    @blp.response(200, UtilisationSchema)
    @inject
    def get(self, args, show: ShowUtilisation = Provide["show_utilisation"]):
        """Device utilisation per day: the share of the devices' time in each status

        From every device's status history, each counted from its creation up to now; a
        status set before the window carries into it. Deleted devices are not counted."""
        days = show(days=args["days"])
        return json_response(
            {
                "items": [
                    {
                        "day": d.day.isoformat(),
                        "device_seconds": round(d.total, 3),
                        "shares": {
                            s.value: round(seconds / d.total, 4)
                            for s in DeviceStatus
                            if (seconds := d.seconds.get(s))
                        },
                    }
                    for d in days
                ]
            }
        )
