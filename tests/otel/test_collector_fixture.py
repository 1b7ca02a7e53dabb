"""The collector fixture on its own (no rlmbox): a hand-written OTLP/JSON trace with a
parent and a child span goes into the collector's OTLP/HTTP receiver and comes out of
its otlphttp exporter into the sink, decoded."""
import time

from otel_collector import describe, post_json  # tests/fixtures, on sys.path via conftest.py

TRACE_ID = "5b8efff798038103d269b633813fc60c"
PARENT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b175"


def kv(key, **value):
    return {"key": key, "value": value}


def export_request():
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [kv("service.name", stringValue="fixture-selftest")]},
        "scopeSpans": [{
            "scope": {"name": "selftest", "version": "1.0"},
            "spans": [
                {"traceId": TRACE_ID, "spanId": PARENT_ID, "name": "parent",
                 "kind": 2, "startTimeUnixNano": str(now - 2_000_000),
                 "endTimeUnixNano": str(now),
                 "attributes": [kv("http.route", stringValue="/execute"),
                                kv("rlm.depth", intValue="2"),
                                kv("ok", boolValue=True),
                                kv("ratio", doubleValue=0.5),
                                kv("tags", arrayValue={"values": [{"stringValue": "a"},
                                                                  {"intValue": "7"}]})],
                 "status": {"code": 1}},
                {"traceId": TRACE_ID, "spanId": CHILD_ID, "parentSpanId": PARENT_ID,
                 "name": "child", "kind": 1,
                 "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now),
                 "attributes": [kv("big", intValue="9007199254740993")],
                 "events": [{"name": "exception", "timeUnixNano": str(now),
                             "attributes": [kv("exception.type", stringValue="E")]}],
                 "status": {"code": 2, "message": "boom"}},
            ]}]}]}


def test_parent_and_child_arrive_decoded(collector):
    assert collector.endpoint.startswith("http://127.0.0.1:")
    assert collector.env()["OTEL_EXPORTER_OTLP_ENDPOINT"] == collector.endpoint
    status, text = post_json(collector.traces_url, export_request())
    assert status == 200, text

    spans = collector.wait_for(lambda ss: len(ss) >= 2, timeout=10)
    assert len(spans) == 2, describe(spans)
    by_name = {s["name"]: s for s in spans}
    parent, child = by_name["parent"], by_name["child"]

    assert parent["trace_id"] == child["trace_id"] == TRACE_ID
    assert parent["span_id"] == PARENT_ID and parent["parent_span_id"] is None
    assert child["span_id"] == CHILD_ID and child["parent_span_id"] == PARENT_ID
    assert parent["service_name"] == child["service_name"] == "fixture-selftest"
    assert parent["scope"] == {"name": "selftest", "version": "1.0"}
    assert parent["kind"] == 2 and child["kind"] == 1
    assert parent["attributes"] == {"http.route": "/execute", "rlm.depth": 2, "ok": True,
                                    "ratio": 0.5, "tags": ["a", 7]}
    assert child["attributes"] == {"big": 9007199254740993}
    assert parent["status"] == {"code": "OK", "message": ""}
    assert child["status"] == {"code": "ERROR", "message": "boom"}
    assert child["events"][0]["name"] == "exception"
    assert child["events"][0]["attributes"] == {"exception.type": "E"}
    assert parent["end_ns"] - parent["start_ns"] == 2_000_000

    assert collector.wait_for_span("child", timeout=1)["span_id"] == CHILD_ID
    collector.clear()
    assert collector.spans() == []


def test_spans_waits_and_bad_requests_are_refused(collector):
    assert collector.spans() == []
    t0 = time.monotonic()
    assert collector.spans(timeout=0.5) == []  # nothing sent: returns after the timeout
    assert time.monotonic() - t0 >= 0.45
    status, _ = post_json(collector.traces_url, {"resourceSpans": "not a list"})
    assert status == 400
    post_json(collector.traces_url, export_request())
    assert {s["name"] for s in collector.spans(timeout=10)} == {"parent", "child"}
