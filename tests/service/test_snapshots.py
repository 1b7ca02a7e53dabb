"""Session snapshots, forks and the session store, through serve-exec's HTTP API."""
import glob
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from service_process import read_event

STATE = (
    "import collections, random\n"
    "total = 41\n"
    "def bump(n):\n"
    "    return n + 1\n"
    "class Box:\n"
    "    def __init__(self, v): self.v = v\n"
    "box = Box([1, 2, 3])\n"
    "counts = collections.Counter('abca')\n"
)
CHECK = "print(bump(total), box.v, counts['a'], len(context.split()))"
EXPECTED = "42 [1, 2, 3] 2 3\n"


def session_with_state(svc):
    sid = svc.new_session(context="alpha beta gamma")
    status, r = svc.run(sid, STATE)
    assert status == 200 and r["success"], r
    return sid


def test_snapshot_then_restore_keeps_the_state(svc):
    sid = session_with_state(svc)
    status, snap = svc.post(f"/session/{sid}/snapshot")
    assert status == 200, snap
    assert 0 < snap["bytes"] < 2 << 20
    # The original goes on and changes; the snapshot does not.
    svc.run(sid, "total = 0")
    status, made = svc.post("/session", {"from_snapshot": snap["snapshot_id"]})
    assert status == 200, made
    new = made["session_id"]
    assert new != sid
    assert svc.run(new, CHECK)[1]["stdout"] == EXPECTED
    # FINAL_VAR-style lookups read the restored variables.
    assert svc.get(f"/session/{new}/vars/total")[1]["value"] == 41
    # A snapshot restores as often as asked, each copy its own.
    other = svc.post("/session", {"from_snapshot": snap["snapshot_id"]})[1]["session_id"]
    svc.run(new, "total = 7")
    assert svc.run(other, "total")[1]["stdout"] == "41\n"
    assert svc.request("DELETE", f"/snapshots/{snap['snapshot_id']}")[0] == 200
    status, body = svc.post("/session", {"from_snapshot": snap["snapshot_id"]})
    assert status == 404 and body["error"] == "Snapshot not found"
    assert svc.request("DELETE", f"/snapshots/{snap['snapshot_id']}")[0] == 404


def test_forks_are_isolated_and_reseeded(svc):
    sid = session_with_state(svc)
    status, body = svc.post(f"/session/{sid}/fork", {"count": 3})
    assert status == 200, body
    kids = body["session_ids"]
    assert len(set(kids)) == 3 and sid not in kids
    for i, k in enumerate(kids):
        assert svc.run(k, CHECK)[1]["stdout"] == EXPECTED
        svc.run(k, f"total = {100 + i}\nbox.v.append({i})")
    for i, k in enumerate(kids):
        assert svc.run(k, "print(total, box.v)")[1]["stdout"] == f"{100 + i} [1, 2, 3, {i}]\n"
    assert svc.run(sid, "print(total, box.v)")[1]["stdout"] == "41 [1, 2, 3]\n"
    draws = {svc.run(k, "random.getrandbits(64)")[1]["stdout"] for k in kids + [sid]}
    assert len(draws) == 4
    ids = {s["session_id"] for s in svc.get("/sessions")[1]["sessions"]}
    assert set(kids) <= ids


def test_bad_fork_counts_and_unknown_ids(svc):
    sid = svc.new_session()
    for bad in (0, -1, "3", 1.5, 65):
        status, body = svc.post(f"/session/{sid}/fork", {"count": bad})
        assert status == 400, (bad, body)
    assert svc.post("/session/" + "0" * 32 + "/fork", {"count": 1})[0] == 404
    assert svc.post("/session/" + "0" * 32 + "/snapshot")[0] == 404
    assert svc.post("/session", {"from_snapshot": "../../etc/passwd"})[0] == 404
    assert svc.post("/session", {"from_snapshot": 7})[0] == 400


def test_snapshot_in_the_middle_of_a_cell_is_a_409(svc):
    sid = svc.new_session()
    done = {}

    def long_cell():
        done["r"] = svc.run(sid, "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass")

    t = threading.Thread(target=long_cell)
    t.start()
    time.sleep(0.4)
    status, body = svc.post(f"/session/{sid}/snapshot")
    fstatus, _ = svc.post(f"/session/{sid}/fork", {"count": 2})
    t.join()
    assert status == 409 and "between cells" in body["error"], body
    assert fstatus == 409
    assert done["r"][1]["success"]
    assert svc.post(f"/session/{sid}/snapshot")[0] == 200


def store_files(store, kind):
    return glob.glob(os.path.join(store, kind, "*", "*"))


def test_a_tampered_or_truncated_snapshot_file_is_refused(make_service, tmp_path):
    store = str(tmp_path / "store")
    svc = make_service(args=("--session-store", store))
    sid = session_with_state(svc)
    snap = svc.post(f"/session/{sid}/snapshot")[1]["snapshot_id"]
    (path,) = store_files(store, "snapshots")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1
    open(path, "wb").write(bytes(data))
    status, body = svc.post("/session", {"from_snapshot": snap})
    assert status == 400 and "not authentic" in body["error"], body
    open(path, "wb").write(bytes(data[: len(data) // 3]))
    status, body = svc.post("/session", {"from_snapshot": snap})
    assert status == 400, body
    # The server is unharmed.
    assert svc.run(sid, CHECK)[1]["stdout"] == EXPECTED


def test_another_servers_key_is_refused(make_service, tmp_path):
    store = str(tmp_path / "store")
    a = make_service(args=("--session-store", store))
    sid = session_with_state(a)
    snap = a.post(f"/session/{sid}/snapshot")[1]["snapshot_id"]
    a.stop()
    key = tmp_path / "other.key"
    key.write_bytes(os.urandom(32))
    b = make_service(args=("--session-store", store, "--snapshot-key-file", str(key)))
    status, body = b.post("/session", {"from_snapshot": snap})
    assert status == 400 and "not authentic" in body["error"], body


def test_sessions_survive_a_restart_with_a_store(make_service, tmp_path):
    store = str(tmp_path / "store")
    a = make_service(args=("--session-store", store))
    sid = session_with_state(a)
    other = a.new_session()
    a.run(other, "mine = 'other'")
    assert a.stop() == 0
    assert len(store_files(store, "sessions")) == 2
    b = make_service(args=("--session-store", store))
    listed = {s["session_id"]: s for s in b.get("/sessions")[1]["sessions"]}
    assert listed[sid]["hibernated"] is True
    assert b.run(sid, CHECK)[1]["stdout"] == EXPECTED
    assert b.run(other, "mine")[1]["stdout"] == "'other'\n"
    assert b.get("/sessions")[1]["sessions"][0]["hibernated"] is False
    # DELETE removes the saved state too.
    assert b.request("DELETE", f"/session/{other}")[0] == 200
    assert len(store_files(store, "sessions")) == 1


def test_idle_sessions_hibernate_and_wake_and_kill9_keeps_the_saved_state(make_service, tmp_path):
    store = str(tmp_path / "store")
    a = make_service(args=("--session-store", store, "--hibernate-after", "0.3"))
    sid = session_with_state(a)
    deadline = time.time() + 10
    while time.time() < deadline:
        s = [x for x in a.get("/sessions")[1]["sessions"] if x["session_id"] == sid][0]
        if s["hibernated"]:
            break
        time.sleep(0.1)
    assert s["hibernated"], s
    # Wakes transparently on its next request.
    assert a.run(sid, CHECK)[1]["stdout"] == EXPECTED
    a.run(sid, "total = 1000")  # newer than the saved state ...
    a.stop(sig=signal.SIGKILL)  # ... and lost with the process, nothing else
    b = make_service(args=("--session-store", store))
    status, r = b.run(sid, "total")
    assert status == 200 and r["stdout"] in ("41\n", "1000\n"), r


def test_hibernated_sessions_still_expire(make_service, tmp_path):
    store = str(tmp_path / "store")
    a = make_service(args=("--session-store", store, "--hibernate-after", "0.2"))
    sid = a.new_session(ttl=1.5)
    a.run(sid, "x = 1")
    time.sleep(0.8)
    assert [x["hibernated"] for x in a.get("/sessions")[1]["sessions"]] == [True]
    time.sleep(1.5)
    assert a.run(sid, "x")[0] == 404
    assert store_files(store, "sessions") == []


def test_max_sessions_counts_live_ones_and_the_oldest_idle_one_hibernates(make_service, tmp_path):
    store = str(tmp_path / "store")
    svc = make_service(env={"MAX_SESSIONS": "2"}, args=("--session-store", store))
    ids = []
    for i in range(5):
        sid = svc.new_session()
        svc.run(sid, f"n = {i}")
        ids.append(sid)
    listed = {s["session_id"]: s["hibernated"] for s in svc.get("/sessions")[1]["sessions"]}
    assert sum(1 for h in listed.values() if not h) == 2
    for i, sid in enumerate(ids):
        assert svc.run(sid, "n")[1]["stdout"] == f"{i}\n"
    # Without a store, a full server refuses instead.
    bare = make_service(env={"MAX_SESSIONS": "1"})
    bare.new_session()
    assert bare.post("/session", {})[0] == 429


def test_tenants_cannot_reach_each_others_snapshots(make_service, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("alice tok-alice-0123456789\nbob tok-bob-0123456789ab\n")
    svc = make_service(args=("--tokens-file", str(tokens)))
    alice = {"Authorization": "Bearer tok-alice-0123456789"}
    bob = {"Authorization": "Bearer tok-bob-0123456789ab"}
    sid = svc.post("/session", {}, headers=alice)[1]["session_id"]
    snap = svc.post(f"/session/{sid}/snapshot", {}, headers=alice)[1]["snapshot_id"]
    assert svc.post(f"/session/{sid}/snapshot", {}, headers=bob)[0] == 404
    assert svc.post(f"/session/{sid}/fork", {"count": 1}, headers=bob)[0] == 404
    assert svc.post("/session", {"from_snapshot": snap}, headers=bob)[0] == 404
    assert svc.request("DELETE", f"/snapshots/{snap}", headers=bob)[0] == 404
    assert svc.post("/session", {"from_snapshot": snap}, headers=alice)[0] == 200


def test_a_snapshot_right_after_a_streamed_cell_is_taken(svc):
    # The inference plane checkpoints a REPL the moment a cell's result event
    # arrives (RLM_FORK_CHILDREN): the session's turn must be free by then.
    # On a busy host (CI builds beside the tests) the server's thread may be
    # preempted between the result and the end of the stream: three spinners
    # on this machine's cores make that likely.
    sid = svc.new_session()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        for i in range(200):
            c, resp = svc.stream(sid, f"v = {i}")
            assert read_event(resp)["event"] == "result"
            status, snap = svc.post(f"/session/{sid}/snapshot")
            c.close()
            assert status == 200, (i, snap)
            assert svc.request("DELETE", f"/snapshots/{snap['snapshot_id']}")[0] == 200
    finally:
        for p in spinners:
            p.kill()
            p.wait()
