"""serve-exec: auth, graceful shutdown, concurrency, slow clients."""
import random
import socket
import threading
import time


def test_auth_on(make_service):
    s = make_service(env={"RLMBOX_TOKEN": "s3cret"})
    assert s.request("GET", "/health", headers={"Authorization": "none"})[0] == 200
    for method, path in (("GET", "/ready"), ("GET", "/metrics"), ("GET", "/sessions"),
                         ("POST", "/execute"), ("POST", "/session")):
        status, body = s.request(method, path, body={"code": "1"},
                                 headers={"Authorization": "Bearer wrong"})
        assert status == 401, path
        assert body["code"] == "unauthorized"
        assert s.request(method, path, body={"code": "1"},
                         headers={"Authorization": ""})[0] == 401
    assert s.execute("print('authorized')")[1]["stdout"] == "authorized\n"


def test_auth_off_by_default(svc):
    assert svc.request("POST", "/execute", {"code": "1"},
                       headers={"Authorization": "Bearer anything"})[0] == 200


def test_sigterm_drains_in_flight_work(make_service):
    s = make_service()
    result = {}

    def slow():
        result["r"] = s.execute("import time\ntime.sleep(1.5)\nprint('finished')")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(15)
    t.join(10)
    assert result["r"][0] == 200 and result["r"][1]["stdout"] == "finished\n"
    assert s.proc.wait(10) == 0
    try:
        s.get("/health")
        raise AssertionError("still accepting after SIGTERM")
    except OSError:
        pass


def test_concurrent_mixed_traffic_no_cross_talk(svc):
    errors = []

    def client(n):
        rng = random.Random(n)
        sid = svc.new_session()
        total = 0
        for i in range(50):
            if rng.random() < 0.5:
                v = rng.randint(0, 1000)
                status, r = svc.execute(f"{v} * 2")
                if status != 200 or r["stdout"] != f"{v * 2}\n":
                    errors.append(("stateless", n, i, status, r))
            else:
                total += i
                status, r = svc.run(sid, f"t = globals().get('t', 0) + {i}\nmine = {n}\n(t, mine)")
                if status != 200 or r["stdout"] != f"({total}, {n})\n":
                    errors.append(("session", n, i, status, r))
        svc.request("DELETE", f"/session/{sid}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_slow_and_vanishing_clients_do_not_block_others(svc):
    # A client that sends half a request and stalls, and one that connects and leaves.
    stalled = socket.create_connection(("127.0.0.1", svc.port))
    stalled.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"co")
    gone = socket.create_connection(("127.0.0.1", svc.port))
    gone.close()
    t0 = time.time()
    assert svc.execute("print('served')")[1]["stdout"] == "served\n"
    assert time.time() - t0 < 5
    stalled.close()


def test_full_queue_is_429_and_recovers(make_service):
    s = make_service(args=("--workers", "1", "--max-queue", "1"))
    results = []

    def slow():
        results.append(s.execute("import time\ntime.sleep(0.8)")[0])

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(30)
    assert sorted(results) == [200, 200, 429, 429]
    status, r = s.execute("print('after')")
    assert status == 200 and r["stdout"] == "after\n"
