"""What the netns tests run inside a namespace (`ip netns exec NS python3 nsclient.py ...`).

    probe HOST PORT [TIMEOUT]     one real TCP connect; prints ok | refused | timeout
                                  (a dropped SYN) | denied (EPERM) | unreachable |
                                  error:<errno name>
    http METHOD URL [BODY_FILE]   one HTTP request; prints {"status": .., "body": ..}
    listen HOST PORT              accepts and closes connections forever (an "outside" host)
"""
import errno
import http.client
import json
import socket
import sys
import urllib.parse


def probe(host, port, timeout=1.0):
    try:
        socket.create_connection((host, int(port)), timeout=float(timeout)).close()
        return "ok"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return {errno.ECONNREFUSED: "refused", errno.EPERM: "denied",
                errno.EHOSTUNREACH: "unreachable", errno.ENETUNREACH: "unreachable",
                errno.ETIMEDOUT: "timeout"}.get(e.errno, "error:" + errno.errorcode.get(e.errno, "?"))


def request(method, url, body_file=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    body = open(body_file, "rb").read() if body_file else None
    c.request(method, u.path or "/", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    try:
        data = json.loads(data)
    except ValueError:
        pass
    return {"status": r.status, "body": data}


def listen(host, port):
    s = socket.create_server((host, int(port)), reuse_port=False)
    while True:
        conn, _ = s.accept()
        conn.close()


def main(argv):
    cmd = argv[0]
    if cmd == "probe":
        print(probe(*argv[1:]))
    elif cmd == "http":
        try:
            print(json.dumps(request(*argv[1:])))
        except OSError as e:
            print(json.dumps({"status": None, "error": str(e)}))
    elif cmd == "listen":
        listen(*argv[1:])
    else:
        sys.exit("unknown command: " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
