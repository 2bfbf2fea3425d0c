#!/usr/bin/env python3
"""The requests `scripts/build-pgo` profiles: what WebDAV clients send most, over one
keep-alive connection, ROUNDS times. Usage: pgo-workload.py BASE_URL ROUNDS [USER PASSWORD]

The proportions steer the optimiser, so they follow real use: many small GETs and
PROPFINDs, uploads, property and lock traffic, and a tree COPY/MOVE/DELETE now and then.
Every answer's status is checked: a profile of error answers would optimise the wrong path.
"""
import base64
import http.client
import os
import ssl
import sys
from urllib.parse import urlsplit

base = urlsplit(sys.argv[1])
rounds = int(sys.argv[2])
prefix = base.path.rstrip("/")
auth = {}
if len(sys.argv) > 4:
    token = base64.b64encode(f"{sys.argv[3]}:{sys.argv[4]}".encode()).decode()
    auth = {"Authorization": f"Basic {token}"}
if base.scheme == "https":
    conn = http.client.HTTPSConnection(base.hostname, base.port, context=ssl._create_unverified_context())
else:
    conn = http.client.HTTPConnection(base.hostname, base.port)
origin = f"{base.scheme}://{base.netloc}"


def req(method, path, body=None, headers=None, ok=(200, 201, 204, 207)):
    conn.request(method, prefix + path, body=body, headers={**auth, **(headers or {})})
    resp = conn.getresponse()
    resp.read()
    if resp.status not in ok:
        sys.exit(f"{method} {path}: {resp.status} {resp.reason}")
    return resp


ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
NAMED = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/>'
         b'<D:getlastmodified/><D:resourcetype/><D:getetag/></D:prop></D:propfind>')
SET = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-pgo">'
       b'<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>')
LOCK = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
        b'<D:locktype><D:write/></D:locktype><D:owner>pgo</D:owner></D:lockinfo>')

req("MKCOL", "/pgo/")
req("MKCOL", "/pgo/tree/")
for i in range(200):
    req("PUT", f"/pgo/tree/f{i}.txt", b"x" * 64)
req("PUT", "/pgo/small.txt", os.urandom(4096))
req("PUT", "/pgo/big.bin", os.urandom(8 << 20))
for _ in range(rounds):
    etag = req("HEAD", "/pgo/small.txt").getheader("ETag")
    for _ in range(100):
        req("GET", "/pgo/small.txt")
    req("GET", "/pgo/small.txt", headers={"If-None-Match": etag}, ok=(304,))
    req("GET", "/pgo/big.bin", headers={"Range": "bytes=0-65535"}, ok=(206,))
    req("GET", "/pgo/big.bin")
    req("GET", "/pgo/tree/")
    for _ in range(5):
        req("PROPFIND", "/pgo/tree/", ALLPROP, {"Depth": "1"})
        req("PROPFIND", "/pgo/tree/", NAMED, {"Depth": "1"})
        req("PROPFIND", "/pgo/small.txt", None, {"Depth": "0"})
    for i in range(40):
        req("PUT", f"/pgo/up{i}.bin", b"z" * 8192)
        req("PROPPATCH", f"/pgo/up{i}.bin", SET)
    for _ in range(40):
        lock = req("LOCK", "/pgo/small.txt", LOCK, {"Timeout": "Second-60"})
        token = lock.getheader("Lock-Token")
        req("PUT", "/pgo/small.txt", b"locked" * 100, {"If": f"({token})"})
        req("UNLOCK", "/pgo/small.txt", None, {"Lock-Token": token})
    req("COPY", "/pgo/tree/", None,
        {"Depth": "infinity", "Overwrite": "F", "Destination": f"{origin}{prefix}/pgo/copy/"})
    req("MOVE", "/pgo/copy/", None, {"Overwrite": "F", "Destination": f"{origin}{prefix}/pgo/moved/"})
    for _ in range(5):
        req("MOVE", "/pgo/up0.bin", None, {"Destination": f"{origin}{prefix}/pgo/renamed.bin"})
        req("MOVE", "/pgo/renamed.bin", None, {"Destination": f"{origin}{prefix}/pgo/up0.bin"})
    req("DELETE", "/pgo/moved/")
    for i in range(40):
        req("DELETE", f"/pgo/up{i}.bin")
    req("OPTIONS", "/")
    req("GET", "/pgo/missing.txt", ok=(404,))
