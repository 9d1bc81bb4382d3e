"""/api/webhooks: subscribe a URL to lab events, see its delivery log, send it a ping.

Admins manage every subscription; engineers (and admins' run-scope tokens) subscribe and see
only their own (another's is 404). The secret that signs the deliveries (X-Devicelab-Signature: sha256=HMAC-SHA256 of the
body, hex) is shown once, in the answer to the subscription."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import json_response
from adapters.http.security import current_principal, requires
from application.use_cases.webhooks import (
    GetSubscription,
    ListDeliveries,
    ListSubscriptions,
    Ping,
    Subscribe,
    SubscribeRequest,
    Unsubscribe,
    WebhookActor,
)
from domain.users import Permission
from domain.webhooks import SUBSCRIBABLE, Delivery, DeliveryStatus, Subscription, WebhookEvent

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks", description="Webhooks")

EVENTS = [e.value for e in SUBSCRIBABLE]


def _actor() -> WebhookActor:
    """Everyone's subscriptions are for admins, signed in or with a full-scope token (a run
    token of an admin manages only its own, like an engineer's)."""
    principal = current_principal()
    return WebhookActor(principal.user_id, principal.email, principal.can(Permission.MANAGE_USERS))


class SubscribeSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENTS)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENTS)),
    )
    only_fail = fields.Boolean(
        load_default=False,
        metadata={"description": "run.finished only for runs whose verdict is fail"},
    )
    description = fields.String(load_default="", validate=validate.Length(max=500))


class SubscriptionSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String(metadata={"enum": EVENTS}))
    only_fail = fields.Boolean()
    description = fields.String()
    owner_id = fields.String()
    owner_email = fields.String()
    created_at = fields.DateTime()


class NewSubscriptionSchema(SubscriptionSchema):
    secret = fields.String(metadata={"description": "signs the deliveries; shown only now"})


class DeliverySchema(Schema):
    id = fields.String(metadata={"description": "also the Idempotency-Key header"})
    event = fields.String(metadata={"enum": [e.value for e in WebhookEvent]})
    event_key = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in DeliveryStatus]})
    attempts = fields.Integer()
    last_error = fields.String()
    last_status_code = fields.Integer(allow_none=True)
    last_attempt_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    payload = fields.Dict()


class DeliveryListSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))


class SubscriptionListSchema(Schema):
    items = fields.List(fields.Nested(SubscriptionSchema))


class DeliveryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def subscription_json(subscription: Subscription, with_secret: bool = False) -> dict:
    body = {
        "id": subscription.id,
        "url": subscription.url,
        "events": [e.value for e in subscription.events],
        "only_fail": subscription.only_fail,
        "description": subscription.description,
        "owner_id": subscription.owner_id,
        "owner_email": subscription.owner_email,
        "created_at": subscription.created_at.isoformat(),
    }
    if with_secret:
        body["secret"] = subscription.secret
    return body


def delivery_json(delivery: Delivery) -> dict:
    def at(moment):
        return moment.isoformat() if moment else None

    return {
        "id": delivery.id,
        "event": delivery.event.value,
        "event_key": delivery.event_key,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "last_status_code": delivery.last_status_code,
        "last_attempt_at": at(delivery.last_attempt_at),
        "next_attempt_at": at(delivery.next_attempt_at)
        if delivery.status is DeliveryStatus.PENDING
        else None,
        "delivered_at": at(delivery.delivered_at),
        "created_at": delivery.created_at.isoformat(),
        "payload": delivery.payload,
    }


@blp.route("")
class Webhooks(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.response(200, SubscriptionListSchema)
    @inject
    def get(self, list_webhooks: ListSubscriptions = Provide["list_webhooks"]):
        """Subscriptions: an admin's view has everyone's, an engineer's their own"""
        return json_response({"items": [subscription_json(s) for s in list_webhooks(_actor())]})

    @requires(Permission.RUN_TESTS)
    @blp.arguments(SubscribeSchema)
    @blp.response(201, NewSubscriptionSchema)
    @blp.alt_response(422, description="an unknown event, or a URL the lab's policy refuses")
    @inject
    def post(self, data, subscribe: Subscribe = Provide["subscribe_webhook"]):
        """Subscribe a URL to events; the answer carries the signing secret, once

        Only hosts in DEVICELAB_WEBHOOK_ALLOWED_HOSTS are accepted, and none that resolves to
        an address inside the lab's network unless listed by its exact name or network."""
        subscription = subscribe(SubscribeRequest(**data), _actor())
        return json_response(subscription_json(subscription, with_secret=True), 201)


@blp.route("/<subscription_id>")
class WebhookById(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.response(200, SubscriptionSchema)
    @inject
    def get(self, subscription_id, get_webhook: GetSubscription = Provide["get_webhook"]):
        """One subscription"""
        return json_response(subscription_json(get_webhook(subscription_id, _actor())))

    @requires(Permission.RUN_TESTS)
    @blp.response(204)
    @inject
    def delete(self, subscription_id, unsubscribe: Unsubscribe = Provide["unsubscribe_webhook"]):
        """Unsubscribe: the subscription and its delivery log are removed"""
        unsubscribe(subscription_id, _actor())
        return "", 204


@blp.route("/<subscription_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliveryListSchema)
    @inject
    def get(
        self,
        args,
        subscription_id,
        list_deliveries: ListDeliveries = Provide["list_webhook_deliveries"],
    ):
        """The delivery log, newest first: status, attempts, last error"""
        items = list_deliveries(subscription_id, _actor(), args["limit"])
        return json_response({"items": [delivery_json(d) for d in items]})


@blp.route("/<subscription_id>/ping")
class WebhookPing(MethodView):
    @requires(Permission.RUN_TESTS)
    @blp.response(202, DeliverySchema)
    @inject
    def post(self, subscription_id, ping: Ping = Provide["ping_webhook"]):
        """Send a ping: queued at once, sent by the worker (see the delivery log)"""
        return json_response(delivery_json(ping(subscription_id, _actor())), 202)
