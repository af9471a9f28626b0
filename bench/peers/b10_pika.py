#!/usr/bin/env python3
"""B10's Python baseline: the same streaming calls as aioc's AMQP transport
makes, with pika (Debian python3-pika), in the wire format of
docs/rpc-wire.md: a durable request queue per method with its dead-letter
arguments, requests with a correlation id and reply-to
amq.rabbitmq.reply-to (direct reply-to), replies with the x-kind and x-seq
headers, 5 data chunks of 64 bytes and the end marker, the request
acknowledged after its end. A pika client and an aioc worker (or the
other way round) understand each other.

    b10_pika.py PORT CALLS INFLIGHT WORKERS [--prefix P]
    b10_pika.py --worker PORT PREFIX FD

Workers are separate processes (this script again, in worker mode), each
on its own BlockingConnection with basic.qos(prefetch 64, global); the
client keeps INFLIGHT calls going on one BlockingConnection, sending the
next request from the callback that receives a call's end. Neither side
uses publisher confirms: with BlockingConnection every confirmed publish
waits for its confirm, which would serialise the replies; b10_raw does
without them too.

Chunk latency is b10_raw's: from just before the call's request is
published to the moment the client's callback has the chunk, for every data
chunk; p50 and p99 over all of them. Prints one line of JSON with b10_raw's
fields and exits 0; exits 1 if a call went wrong."""

import json
import os
import signal
import subprocess
import sys
import time

import pika

CHUNKS = 5
CHUNK_LEN = 64
METHOD = "b10"
PREFETCH = 64
REPLY_TO = "amq.rabbitmq.reply-to"


def params(port):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=port,
        credentials=pika.PlainCredentials("guest", "guest"),
        heartbeat=0, blocked_connection_timeout=None)


def declare(ch, prefix):
    """The request queue and the dead-letter queue, as docs/rpc-wire.md
    declares them (a declaration with other arguments would be refused)."""
    dead = prefix + "dead-letter"
    ch.queue_declare(dead, durable=True)
    ch.queue_declare(prefix + METHOD, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})


def worker(port, prefix, fd):
    conn = pika.BlockingConnection(params(port))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=PREFETCH, global_qos=True)
    declare(ch, prefix)
    chunk = b"x" * CHUNK_LEN
    data_props = [pika.BasicProperties(
        content_type="application/octet-stream", delivery_mode=1,
        headers={"x-kind": "data", "x-seq": i}) for i in range(CHUNKS)]

    def on_request(ch, m, props, body):
        if not props.reply_to or not props.correlation_id:
            ch.basic_nack(m.delivery_tag, requeue=False)
            return
        corr = props.correlation_id
        for i in range(CHUNKS):
            p = data_props[i]
            p.correlation_id = corr
            ch.basic_publish("", props.reply_to, chunk, p)
        ch.basic_publish("", props.reply_to, b"", pika.BasicProperties(
            correlation_id=corr, content_type="application/octet-stream",
            delivery_mode=1, headers={"x-kind": "end", "x-seq": CHUNKS}))
        ch.basic_ack(m.delivery_tag)

    ch.basic_consume(prefix + METHOD, on_request)
    os.write(fd, b"1")
    os.close(fd)
    ch.start_consuming()


def client(port, calls, inflight, workers, prefix):
    r, w = os.pipe()
    procs = []
    for _ in range(workers):
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", str(port),
             prefix, str(w)], pass_fds=(w,)))
    os.close(w)
    try:
        for _ in range(workers):
            if os.read(r, 1) != b"1":
                raise SystemExit("b10_pika: a worker did not start")
        os.close(r)
        return run_client(port, calls, inflight, workers, prefix)
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def run_client(port, calls, inflight, workers, prefix):
    conn = pika.BlockingConnection(params(port))
    ch = conn.channel()
    declare(ch, prefix)
    queue = prefix + METHOD
    cid = os.urandom(12).hex()
    sent = [0.0] * calls
    got = [0] * calls
    lat = []
    state = {"next": 0, "done": 0, "bad": 0}
    req = b"request-payload\0"
    now = time.monotonic

    def send_one():
        k = state["next"]
        state["next"] = k + 1
        props = pika.BasicProperties(
            content_type="application/octet-stream", delivery_mode=1,
            correlation_id="%s.%x" % (cid, k), reply_to=REPLY_TO)
        sent[k] = now()
        ch.basic_publish("", queue, req, props)

    def on_reply(ch, m, props, body):
        t = now()
        corr = props.correlation_id or ""
        try:
            k = int(corr.rsplit(".", 1)[1], 16)
        except (IndexError, ValueError):
            state["bad"] += 1
            return
        h = props.headers or {}
        kind = h.get("x-kind")
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind == "data":
            if h.get("x-seq") != got[k] or len(body) != CHUNK_LEN:
                state["bad"] += 1
            got[k] += 1
            lat.append(t - sent[k])
        elif kind == "end":
            if got[k] != CHUNKS:
                state["bad"] += 1
            state["done"] += 1
            if state["next"] < calls:
                send_one()
        else:
            state["bad"] += 1
            state["done"] += 1

    ch.basic_consume(REPLY_TO, on_reply, auto_ack=True)
    t0 = now()
    for _ in range(min(inflight, calls)):
        send_one()
    while state["done"] < calls:
        conn.process_data_events(time_limit=None)
    el = now() - t0
    conn.close()
    lat.sort()
    n = len(lat)
    print(json.dumps({
        "calls_per_s": round(state["done"] / el),
        "p50_ms": round(lat[n // 2] * 1e3, 4) if n else 0,
        "p99_ms": round(lat[n * 99 // 100] * 1e3, 4) if n else 0,
        "calls": state["done"], "inflight": inflight, "workers": workers}),
        flush=True)
    if state["bad"]:
        print("b10_pika: %d wrong replies" % state["bad"], file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--worker":
        signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
        worker(int(argv[2]), argv[3], int(argv[4]))
        return 0
    args = argv[1:]
    prefix = "b10pika.%d." % os.getpid()
    if len(args) == 6 and args[4] == "--prefix":
        prefix = args[5]
        args = args[:4]
    if len(args) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    port, calls, inflight, workers = (int(a) for a in args)
    return client(port, calls, inflight, workers, prefix)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
