"""Webhooks on the in-memory adapters: where a subscription may point, who sees what, events
from the change feed (each once per subscription), signed deliveries retried with backoff
until they are taken or the retry time is up."""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta

import pytest

from adapters.webhooks.in_memory import RecordingSender, StaticResolver
from application.errors import NotFound
from application.use_cases.holds import Actor
from application.use_cases.webhooks import (
    AnnounceExpiringHolds,
    DeliverWebhooks,
    DispatchWebhookEvents,
    ListDeliveries,
    ListSubscriptions,
    Ping,
    Subscribe,
    SubscribeRequest,
    Unsubscribe,
    WebhookActor,
)
from application.webhook_ports import SendFailed
from domain.errors import InvalidValue
from domain.webhooks import DeliveryStatus, RetryPolicy, TargetPolicy, inside_network, signature

ADMIN = WebhookActor("u-admin", "admin@lab.example", True)
ENGINEER = WebhookActor("u-eng", "eng@lab.example", False)
OTHER = WebhookActor("u-other", "other@lab.example", False)
POLICY = TargetPolicy.parse(["hooks.example.com", "*.ci.example.com", "10.9.0.0/16"])
NAMES = {
    "hooks.example.com": ["10.0.0.5"],  # listed by name: its private address is allowed
    "a.ci.example.com": ["93.184.216.34"],
    "inside.ci.example.com": ["192.168.1.20"],  # listed by pattern only: refused
    "half.ci.example.com": ["93.184.216.35", "127.0.0.1"],
}
RETRY = RetryPolicy(first_delay_s=10, max_delay_s=60, retry_for_s=300)


@pytest.fixture
def hooks(lab, clock, ids):
    class Hooks:
        resolver = StaticResolver(NAMES)
        sender = RecordingSender()
        subscribe = Subscribe(lab.new_uow, clock, ids, POLICY, resolver)
        list = ListSubscriptions(lab.new_uow)
        unsubscribe = Unsubscribe(lab.new_uow)
        deliveries = ListDeliveries(lab.new_uow)
        ping = Ping(lab.new_uow, clock, ids)
        dispatch = DispatchWebhookEvents(lab.new_uow, clock, ids)
        deliver = DeliverWebhooks(lab.new_uow, clock, sender, resolver, POLICY, RETRY)

    Hooks.dispatch()  # the dispatcher's first pass: it starts at the end of the feed
    return Hooks


def subscribe(hooks, events=("run.finished",), actor=ENGINEER, **more):
    return hooks.subscribe(
        SubscribeRequest("https://a.ci.example.com/hook", list(events), **more), actor
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://evil.example.org/x", "not allowed"),
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://inside.ci.example.com/x", "inside the lab's network (192.168.1.20)"),
        ("https://half.ci.example.com/x", "(127.0.0.1)"),
        ("http://10.1.2.3/x", "not allowed"),
        ("https://hooks.example.com:99999/x", "not a URL"),
    ],
)
def test_a_subscription_to_a_host_outside_the_policy_is_refused(hooks, url, why):
    with pytest.raises(InvalidValue) as refused:
        hooks.subscribe(SubscribeRequest(url, ["run.finished"]), ADMIN)
    assert why in str(refused.value)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::7f00:1",  # IPv4-compatible
        "::ffff:0:7f00:1",  # IPv4-translated
        "::ffff:127.0.0.1",  # IPv4-mapped
    ],
)
def test_ipv6_forms_of_lab_addresses_are_inside_the_network(address):
    assert inside_network(ipaddress.ip_address(address))
    assert not inside_network(ipaddress.ip_address("2606:4700:4700::1111"))


def test_an_ipv6_literal_without_a_port_is_sent_to_the_schemes_port(monkeypatch):
    from adapters.webhooks import http_sender

    ports = []

    class Capture(http_sender._PinnedHTTPConnection):
        def request(self, *args, **kwargs):
            ports.append((self.host, self.port))
            raise OSError("not sent")

    monkeypatch.setattr(http_sender, "_PinnedHTTPConnection", Capture)
    with pytest.raises(SendFailed):
        http_sender.HttpWebhookSender().send("http://[2001:db8::1]/hook", "2001:db8::1", b"", {})
    assert ports == [("2001:db8::1", 80)]


def test_listed_names_and_networks_are_allowed():
    assert POLICY.refused_addresses("hooks.example.com", ["10.0.0.5"]) == []
    assert POLICY.host_allowed("10.9.4.4") and not POLICY.host_allowed("10.8.4.4")
    assert POLICY.refused_addresses("a.ci.example.com", ["10.9.1.1", "169.254.0.1"]) == [
        "169.254.0.1"
    ]
    assert TargetPolicy.parse([]).host_allowed("hooks.example.com") is False


def test_owners_see_their_subscriptions_and_admins_all(hooks):
    mine = subscribe(hooks)
    theirs = subscribe(hooks, actor=OTHER)
    assert mine.secret.startswith("whsec_")
    assert [s.id for s in hooks.list(ENGINEER)] == [mine.id]
    assert [s.id for s in hooks.list(ADMIN)] == [mine.id, theirs.id]
    with pytest.raises(NotFound):
        hooks.deliveries(theirs.id, ENGINEER)
    with pytest.raises(NotFound):
        hooks.unsubscribe(theirs.id, ENGINEER)
    hooks.unsubscribe(theirs.id, ADMIN)
    assert [s.id for s in hooks.list(ADMIN)] == [mine.id]


def test_subscriptions_need_known_events(hooks):
    with pytest.raises(InvalidValue):
        subscribe(hooks, ["run.exploded"])
    with pytest.raises(InvalidValue):
        subscribe(hooks, ["ping"])
    with pytest.raises(InvalidValue):
        subscribe(hooks, [])


def finished_run(lab, verdict_voltage=230.0):
    from domain.test_runs import Observation, ResultReport

    meter = lab.add_device(f"meter-{len(lab.store.devices)}")
    case = lab.add_test_case(f"voltage-{len(lab.store.test_cases)}")
    run = lab.start([meter], [case], lab.add_environment(f"env-{len(lab.store.environments)}"))
    lab.record_result(
        run.id, [ResultReport(case.id, meter.id, (Observation("voltage", verdict_voltage),))]
    )
    return run


def test_a_finished_run_is_delivered_once_per_subscription_signed(lab, hooks):
    any_verdict = subscribe(hooks)
    only_fail = subscribe(hooks, only_fail=True)
    failures = subscribe(hooks, ["run.failed"])
    passed = finished_run(lab)
    failed = finished_run(lab, 250.0)
    assert hooks.dispatch() == 3  # two for any verdict, one for the failed verdict
    assert hooks.dispatch() == 0  # the feed read again (its look-behind) adds nothing

    outcomes = hooks.deliver()
    assert [o.status for o in outcomes] == [DeliveryStatus.DELIVERED] * 3
    sent = hooks.sender.sent
    bodies = [json.loads(s.body) for s in sent]
    assert sorted((b["subscription_id"], b["data"]["run"]["id"]) for b in bodies) == sorted(
        [(any_verdict.id, passed.id), (any_verdict.id, failed.id), (only_fail.id, failed.id)]
    )
    for item in sent:
        secret = (
            any_verdict.secret
            if json.loads(item.body)["subscription_id"] == any_verdict.id
            else only_fail.secret
        )
        assert item.headers["X-Devicelab-Signature"] == signature(secret, item.body)
        assert item.headers["Idempotency-Key"] == json.loads(item.body)["id"]
        assert item.address == "93.184.216.34"
    assert hooks.deliver() == []
    assert hooks.deliveries(failures.id, ENGINEER) == []


def test_an_aborted_run_is_a_failed_run_event(lab, hooks):
    failures = subscribe(hooks, ["run.failed"])
    meter, case = lab.add_device("m"), lab.add_test_case("c")
    run = lab.start([meter], [case], lab.add_environment())
    lab.cancel_test_run(run.id, "tester", "bench needed")
    assert hooks.dispatch() == 1
    hooks.deliver()
    (body,) = [json.loads(s.body) for s in hooks.sender.sent]
    assert body["event"] == "run.failed" and body["data"]["run"]["status"] == "aborted"
    assert hooks.deliveries(failures.id, ENGINEER)[0].status is DeliveryStatus.DELIVERED


def test_a_device_going_offline_is_announced_once_per_time(lab, hooks, clock):
    watch = subscribe(hooks, ["device.offline"])
    meter = lab.add_device("meter")
    lab.record_heartbeat(meter.id)
    hooks.dispatch()
    clock.advance(lab.max_silence_s + 1)
    lab.mark_silent_offline()
    assert hooks.dispatch() == 1
    assert hooks.dispatch() == 0
    lab.record_heartbeat(meter.id)
    hooks.dispatch()
    clock.advance(lab.max_silence_s + 1)
    lab.mark_silent_offline()
    assert hooks.dispatch() == 1
    assert [d.event.value for d in hooks.deliveries(watch.id, ENGINEER)] == ["device.offline"] * 2


def test_a_hold_about_to_expire_is_announced_once_and_again_after_an_extension(
    lab, hooks, clock, ids
):
    watch = subscribe(hooks, ["hold.expiring"])
    announce = AnnounceExpiringHolds(lab.new_uow, clock, ids, warning_s=900)
    meter = lab.add_device("meter")
    hold = lab.hold([meter], duration_s=3600)
    assert announce() == 0  # an hour left
    clock.advance(3600 - 900)
    assert announce() == 1
    assert announce() == 0  # once per expiry
    lab.extend_hold(hold.id, 1800, Actor("alice"))
    assert announce() == 0  # half an hour away again
    clock.advance(1800)
    assert announce() == 1
    hooks.deliver()
    bodies = [json.loads(s.body) for s in hooks.sender.sent]
    assert [b["event"] for b in bodies] == ["hold.expiring"] * 2
    assert bodies[0]["data"]["hold"]["devices"][0]["name"] == "meter"
    assert bodies[0]["data"]["hold"]["expires_at"] != bodies[1]["data"]["hold"]["expires_at"]
    assert len(hooks.deliveries(watch.id, ENGINEER)) == 2
    lab.release(hold)
    clock.advance(60)
    assert announce() == 0  # ended holds expire no more


def test_a_receiver_that_is_down_gets_the_delivery_later_and_once(lab, hooks, clock):
    watch = subscribe(hooks)
    finished_run(lab)
    hooks.dispatch()
    hooks.sender.down = True
    (first,) = hooks.deliver()
    assert first.status is DeliveryStatus.PENDING and "refused" in first.error
    assert hooks.deliver() == []  # not due yet: the backoff
    clock.advance(10)
    hooks.deliver()
    (logged,) = hooks.deliveries(watch.id, ENGINEER)
    assert logged.attempts == 2 and logged.next_attempt_at == clock.now() + timedelta(seconds=20)
    hooks.sender.down = False
    clock.advance(20)
    assert [o.status for o in hooks.deliver()] == [DeliveryStatus.DELIVERED]
    assert len(hooks.sender.sent) == 1
    (logged,) = hooks.deliveries(watch.id, ENGINEER)
    assert logged.attempts == 3 and logged.last_error == "" and logged.delivered_at == clock.now()


def test_deliveries_give_up_once_the_retry_time_is_up(lab, hooks, clock):
    watch = subscribe(hooks)
    finished_run(lab)
    hooks.dispatch()
    hooks.sender.status = 500
    for _ in range(20):
        hooks.deliver()
        clock.advance(60)
    (logged,) = hooks.deliveries(watch.id, ENGINEER)
    assert logged.status is DeliveryStatus.GAVE_UP and logged.last_status_code == 500
    assert logged.last_attempt_at <= logged.created_at + timedelta(seconds=RETRY.retry_for_s)


def test_backoff_doubles_up_to_its_cap():
    policy = RetryPolicy(first_delay_s=10, max_delay_s=60)
    assert [policy.delay_after(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_ping_is_sent_to_the_subscription(hooks):
    watch = subscribe(hooks)
    delivery = hooks.ping(watch.id, ENGINEER)
    hooks.deliver()
    (sent,) = hooks.sender.sent
    assert json.loads(sent.body)["event"] == "ping" and sent.headers["X-Devicelab-Event"] == "ping"
    assert hooks.deliveries(watch.id, ENGINEER)[0].id == delivery.id
    with pytest.raises(NotFound):
        hooks.ping(watch.id, OTHER)


def test_history_before_a_subscription_is_not_announced(lab, hooks, clock):
    finished_run(lab)
    clock.advance(1)
    watch = subscribe(hooks)
    assert hooks.dispatch() == 0
    assert hooks.deliveries(watch.id, ENGINEER) == []


def test_the_webhook_settings_are_read_from_the_environment():
    from entrypoints.settings import Settings

    settings = Settings.from_env(
        {
            "DEVICELAB_WEBHOOK_ALLOWED_HOSTS": " hooks.example.com, *.ci.example.com,,10.2.0.0/16",
            "DEVICELAB_WEBHOOK_RETRY_FOR_S": "600",
            "DEVICELAB_WEBHOOK_FIRST_RETRY_S": "2",
        }
    )
    assert settings.webhook_allowed_hosts == (
        "hooks.example.com",
        "*.ci.example.com",
        "10.2.0.0/16",
    )
    assert (settings.webhook_retry_for_s, settings.webhook_first_retry_s) == (600, 2)
    assert Settings.from_env({}).webhook_allowed_hosts == ()
    assert TargetPolicy.parse(settings.webhook_allowed_hosts).host_allowed("10.2.3.4")
