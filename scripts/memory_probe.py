#!/usr/bin/env python3
"""What hostile deep pages cost a release server in memory (security review finding 9).

Starts BINARY (target/release/inbox-gateway) on a fresh SQLite database in a temp dir
(seeded with 100 conversations), then sends, 4 connections at a time:
  1. N distinct deep pages `GET /conversations?external_id[$ne]=<random + 8-60 KB of x>
     &$skip=1&$limit=1`, each twice (so that, were it small, its statement would be kept);
  2. N/4 distinct deep pages with 3 KB filters, each twice: small enough to be kept, more
     than the kept-statement budget holds.
  3. with `legacy`: 50 contacts given 1 MiB of custom fields straight in the database (as
     stored before the field caps), then 16 concurrent `GET /contacts?$limit=50`, 3 rounds;
and prints VmRSS (and the peak, VmHWM) before, between and after. Stops the server by pid.

usage: scripts/memory_probe.py target/release/inbox-gateway [N=10000] [legacy]
With PROBE_POSTGRES=postgres://user@host:5432/db it runs on a new database created
there (dropped at the end) instead of SQLite; psql must be on the PATH.
"""

import http.client
import json
import os
import random
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # MB (MiB)
    return fields


def fire(port, token, paths, threads=4):
    errors = []
    chunks = [paths[i::threads] for i in range(threads)]

    def run(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path in chunk:
            for _ in range(2):
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                res = conn.getresponse()
                res.read()
                if res.status != 200:
                    errors.append(res.status)
        conn.close()

    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


def legacy(tmp, port, token, pid, pg_url=None):
    big = json.dumps({"notes": "x" * (1 << 20)})
    update = ("UPDATE contacts SET custom_fields_by_name = {} WHERE id IN "
              "(SELECT id FROM contacts ORDER BY id LIMIT 50)")
    if pg_url:
        sql = update.format(f"'{big}'::jsonb")
        subprocess.run(["psql", "-q", pg_url], input=sql.encode(), check=True)
    else:
        db = sqlite3.connect(f"{tmp}/probe.db", timeout=30)
        db.execute(update.format("?"), (big,))
        db.commit()
        db.close()
    print(f"before 50 contacts of 1 MiB, 16 concurrent pages: {status(pid)}")
    codes = []
    for _ in range(3):
        def one():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/contacts?$limit=50&$sort[id]=1",
                         headers={"Authorization": f"Bearer {token}"})
            res = conn.getresponse()
            codes.append((res.status, len(res.read())))
        workers = [threading.Thread(target=one) for _ in range(16)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    print(f"answers {sorted(set(codes))}; after: {status(pid)}")


def deep_page(filler):
    value = "".join(random.choices(string.ascii_lowercase, k=8)) + "x" * filler
    return f"/conversations?external_id[$ne]={value}&$skip=1&$limit=1"


def main():
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    tmp = tempfile.mkdtemp(prefix="memory-probe-")
    port = free_port()
    admin = os.environ.get("PROBE_POSTGRES")
    pg_url = None
    if admin:
        name = "probe_" + "".join(random.choices(string.ascii_lowercase, k=10))
        subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
        pg_url = admin.rsplit("/", 1)[0] + "/" + name
    env = dict(
        os.environ,
        APP_ENV="test",
        APP_CONFIG_DIR=os.path.join(REPO, "config"),
        DATABASE_URL=pg_url or f"sqlite://{tmp}/probe.db?mode=rwc",
        PORT=str(port),
        APP__RATE_LIMIT_REQUESTS="0",
        RUST_LOG="warn",
    )
    seed = subprocess.run(
        [binary, "seed", "--conversations", "100"], env=env, capture_output=True, check=True
    )
    login = json.loads(seed.stdout)
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(f"{tmp}/server.log", "w"))
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"strategy": "local", "email": login["admin_email"],
                           "password": login["admin_password"]})
        conn.request("POST", "/authentication", body, {"Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["accessToken"]
        fire(port, token, [deep_page(100) for _ in range(50)])  # warm up
        before = status(server.pid)
        print(f"before: {before}")
        started = time.time()
        errors = fire(port, token, [deep_page(random.randint(8_000, 60_000)) for _ in range(n)])
        large = status(server.pid)
        print(f"after {n} large deep pages x2 ({time.time() - started:.0f} s, "
              f"{len(errors)} non-200): {large}")
        started = time.time()
        errors = fire(port, token, [deep_page(3_000) for _ in range(n // 4)])
        small = status(server.pid)
        print(f"after {n // 4} kept-size (3 KB) deep pages x2 ({time.time() - started:.0f} s, "
              f"{len(errors)} non-200): {small}")
        if "legacy" in sys.argv[3:]:
            legacy(tmp, port, token, server.pid, pg_url)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if pg_url:
            subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE {name} WITH (FORCE)"])


if __name__ == "__main__":
    main()
