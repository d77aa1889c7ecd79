#!/usr/bin/env python3
"""Writes the seed corpora in seeds/<target>/: a few valid (and a few broken) inputs per
fuzz target, so that short runs start past the first byte. Run from fuzz/."""
import os
import struct


def w(target, name, data):
    os.makedirs(os.path.join("seeds", target), exist_ok=True)
    with open(os.path.join("seeds", target, name), "wb") as f:
        f.write(bytes(data))


def frame(body, nfds=0):
    return struct.pack("<IHH", len(body), nfds, 0) + bytes(body)


def s(x):
    b = x.encode()
    return bytes([len(b)]) + b


# connection_recv: first byte = choice (bit 0: small frame limit, bit 1: recv_bytes).
unit = [0]
num = [1, 5, 1]
text = [2] + list(s("hi")) + [1] + list(s("a"))
nested = [3, 2, 1, 7, 2, 1, 2, 1, 0]  # Nested([[7], [1, 2]], Some(Unit))
byts = [4, 3, 9, 9, 9]
w("connection_recv", "messages",
  b"\x00" + frame(unit) + frame(num) + frame(text) + frame(nested) + frame(byts))
w("connection_recv", "raw_bytes", b"\x02" + frame(b"hello") + frame(b""))
w("connection_recv", "small_limit_too_large", b"\x01" + struct.pack("<IHH", 5000, 0, 0) + b"x" * 10)
w("connection_recv", "bad_flags", b"\x00" + struct.pack("<IHH", 1, 0, 1) + b"\x00")
w("connection_recv", "truncated", b"\x00" + frame(text)[:-2])

# pool_frames: Hello, reports (postcard), a task frame head.
w("pool_frames", "hello_ok", [0])
w("pool_frames", "hello_failed", [1] + list(s("init boom")) + [1] + list(s("src/x.rs:1")))
w("pool_frames", "report_ok_u64", [0, 0xAC, 0x02])
w("pool_frames", "report_ok_string", [0] + list(s("result")))
w("pool_frames", "report_panic", [1] + list(s("boom")) + [0])
w("pool_frames", "report_failed", [2, 1] + list(s("could not decode")))
w("pool_frames", "progress", [3, 3, 1, 10])
w("pool_frames", "chunk", [0, 2, 0, 1, 0, 1] + list(s("x")) + [1] + list(s("loc")))
w("pool_frames", "task_frame", list(struct.pack("<qQ", 123456, 7)) + [0, 5])


# queue_ring: size byte, tail, puts, head, gets (u64 LE), then records at the head.
def rec(payload):
    p = bytes(payload)
    return struct.pack("<II", len(p), 0) + p + b"\0" * ((-len(p)) % 8)


r1, r2 = rec([3, 1, 2, 3]), rec([0])
w("queue_ring", "two_records", bytes([0]) + struct.pack("<QQQQ", len(r1) + len(r2), 2, 0, 0) + r1 + r2)
w("queue_ring", "after_a_real_put", bytes([1]) + struct.pack("<QQQQ", 16, 1, 0, 0))
w("queue_ring", "overrun", bytes([2]) + struct.pack("<QQQQ", 16, 1, 0, 0) + struct.pack("<II", 1000, 0))
w("queue_ring", "bad_payload", bytes([4]) + struct.pack("<QQQQ", 16, 1, 0, 0) + rec([200, 1]))
w("queue_ring", "wrapped_positions",
  bytes([0]) + struct.pack("<QQQQ", 1 << 40, 5, (1 << 40) - 16, 4) + r1)


# manager_requests: u16 LE length + a postcard RequestRef, repeated.
def req(b):
    b = bytes(b)
    return struct.pack("<H", len(b)) + b


def call(i, op):
    return [2, i, len(op)] + op


create_dict = [0, 0] + list(s("Dict<u8, u8>")) + [0]
create_list = [0, 1] + list(s("List<u8>")) + [0]
create_ns = [0, 2] + list(s("Namespace")) + [0]
create_value = [0, 3] + list(s("Value<u64>")) + [1, 5]
create_queue = [0, 4, 10] + list(s("Queue<u8>")) + [0]
create_barrier = [0, 11, 3] + list(s("Barrier")) + [0]
dict_ops = [call(0, [1, 1, ord("k"), 1, ord("v")]), call(0, [0, 1, ord("k")]), call(0, [7]),
            [1, 0] + list(s("Dict<u8, u8>")), call(0, [9, 1, ord("k"), 0x80, 0x80, 0x04])]
list_ops = [call(1, [0, 2, 1, 2]), call(1, [3, 0]), call(1, [12])]
other_ops = [call(2, [0] + list(s("x")) + [0, 1, 7]), call(2, [4]),
             call(3, [0]), call(3, [1, 1, 9]), call(3, [2, 0x80, 0x01])]
w("manager_requests", "dict", b"".join(req(x) for x in [create_dict] + dict_ops))
w("manager_requests", "list", b"".join(req(x) for x in [create_dict, create_list] + list_ops))
w("manager_requests", "namespace_value",
  b"".join(req(x) for x in [create_dict, create_list, create_ns, create_value] + other_ops))
w("manager_requests", "sync_kinds", b"".join(req(x) for x in [create_queue, create_barrier, [3]]))


# cluster_entries: mode byte; flat fields are (len, name, value) with value = tag 0
# (bulk string), len, bytes; a reply is a tree of arrays (tag 2, count, items).
def bulk(b):
    b = b if isinstance(b, bytes) else b.encode()
    return bytes([0, len(b)]) + b


def fld(k, v):
    return s(k) + bulk(v)


def arr(items):
    return bytes([2, len(items)]) + b"".join(items)


env = [("v", "1"), ("enc", "postcard"), ("kind", "call"), ("args", b"\x05"), ("id", "t-1"),
       ("reply", "r:1"), ("name", "demo::f"), ("fp", "abc"), ("deadline", "0"),
       ("attempt", "1"), ("nbf", "0"), ("tries", "3"), ("backoff", "100"), ("ttl", "60000")]
w("cluster_entries", "task_entry", b"\x01" + b"".join(fld(k, v) for k, v in env))
w("cluster_entries", "task_entry_small_limit", b"\x03" + b"".join(fld(k, v) for k, v in env))
res = [("id", "t-1"), ("status", "ok"), ("attempt", "1"), ("value", b"\x07")]
w("cluster_entries", "result_ok", b"\x01" + b"".join(fld(k, v) for k, v in res))
res2 = [("id", "t-2"), ("status", "died"), ("attempt", "2"), ("msg", "killed"), ("sig", "9"),
        ("cause_status", "panic"), ("cause_msg", "x")]
w("cluster_entries", "result_died", b"\x01" + b"".join(fld(k, v) for k, v in res2))
flat = []
for k, v in env:
    flat += [bulk(k), bulk(v)]
reply = arr([arr([bulk("concur:pool:s"), arr([arr([bulk("1-0"), arr(flat[:15])])])])])
w("cluster_entries", "xreadgroup_reply", b"\x00" + reply)
