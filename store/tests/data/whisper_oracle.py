"""Runs Python's whisper (the reference) on JSON requests, one per line on stdin, and answers
one JSON line each on stdout. Used by the store's interop tests.

Request: {"op": "create"|"update"|"update_many"|"fetch"|"info", ...arguments}
Floats that JSON cannot carry (nan, inf) travel as their repr strings both ways.
"""
import json
import sys

import whisper


def decode(v):
    return float(v) if isinstance(v, str) else v


def encode(v):
    if v is None:
        return None
    if v != v or v in (float("inf"), float("-inf")):
        return repr(v)
    return v


def handle(req):
    op = req["op"]
    path = req.get("path")
    if op == "create":
        whisper.create(path, [tuple(a) for a in req["archives"]],
                       xFilesFactor=req["xff"], aggregationMethod=req["method"],
                       sparse=req.get("sparse", False))
        return "ok"
    if op == "update":
        whisper.update(path, decode(req["value"]), req["timestamp"], now=req["now"])
        return "ok"
    if op == "update_many":
        whisper.update_many(path, [(t, decode(v)) for t, v in req["points"]], now=req["now"])
        return "ok"
    if op == "fetch":
        r = whisper.fetch(path, req["from"], req["until"], now=req["now"])
        if r is None:
            return None
        (start, end, step), values = r
        return {"start": start, "end": end, "step": step, "values": [encode(v) for v in values]}
    if op == "info":
        return whisper.info(path)
    raise ValueError("unknown op %r" % op)


for line in sys.stdin:
    try:
        result = {"ok": handle(json.loads(line))}
    except Exception as e:  # reported to the test, which decides
        result = {"error": type(e).__name__, "message": str(e)}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
