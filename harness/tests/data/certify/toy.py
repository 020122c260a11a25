#!/usr/bin/env python3
"""A deliberately wrong implementation for harness/tests/certify.rs.

It speaks rehearse-protocol/1 (docs/PROTOCOL.md) on its standard input and
output, in one of these modes (the first argument):

  proxy REHEARSE   forwards every request to `REHEARSE serve` and its answers
                   back, except that it never reports a `persona.lease.expired`
                   event (one deliberate deviation), calls itself `toy`, and
                   declares no `process` steps.
  supervisor REHEARSE
                   the same proxy, but declares and answers decisions only
                   (as an implementation of the supervisor alone would).
  crash            says hello, then exits with status 3 on `configure`.
  hang             says hello and configures, then never answers an `op`.
  garbage          says hello, then answers `configure` with a line that is
                   not JSON.
  old              says hello in a protocol version it does not share.
  mute             declares every answer, then answers each `op` with an
                   empty result (no receipt, no events, no decision).
"""

import json
import subprocess
import sys
import time

STEPS = ["trigger", "tick", "pause", "resume", "disable", "spend", "pump",
         "repair_worker", "restore_checkpoint", "audit", "handoff",
         "ack_handoff", "finalize", "fault", "restart"]
OUTCOMES = ["completed", "crash", "fail", "attempts", "duration"]
ANSWERS = ["receipts", "events", "decisions", "status", "records",
           "processes", "pipeline", "unsettled"]


def say(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def hello(protocol="rehearse-protocol/1", answers=ANSWERS):
    return {"type": "hello", "protocol": protocol,
            "implementation": {"name": "toy", "version": "0.0.1"},
            "capabilities": {"steps": STEPS, "outcomes": OUTCOMES,
                             "answers": answers}}


def proxy(rehearse, decisions_only=False):
    child = subprocess.Popen([rehearse, "serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    for line in sys.stdin:
        request = json.loads(line)
        child.stdin.write(line)
        child.stdin.flush()
        answer = json.loads(child.stdout.readline())
        if request["type"] == "hello":
            answer = hello(answers=["decisions"] if decisions_only else ANSWERS)
        if decisions_only and answer.get("type") == "result":
            answer = {"type": "result", "decision": answer.get("decision")}
        if decisions_only and answer.get("type") == "answer":
            answer = {"type": "error", "message": "no queries were declared"}
        if answer.get("type") == "result" and answer.get("events") is not None:
            answer["events"] = [e for e in answer["events"]
                                if e["kind"] != "persona.lease.expired"]
        say(answer)
        if request["type"] == "end":
            break
    child.stdin.close()
    child.wait()


def scripted(mode):
    for line in sys.stdin:
        kind = json.loads(line)["type"]
        if kind == "hello":
            say(hello("rehearse-protocol/0" if mode == "old" else "rehearse-protocol/1"))
        elif kind == "end":
            say({"type": "bye"})
            return
        elif mode == "crash":
            sys.stderr.write("toy: giving up\n")
            sys.exit(3)
        elif mode == "garbage":
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
        elif mode in ("hang", "mute") and kind == "configure":
            say({"type": "configured"})
        elif mode == "mute":
            say({"type": "result"})
        else:
            time.sleep(60)


if __name__ == "__main__":
    if sys.argv[1] in ("proxy", "supervisor"):
        proxy(sys.argv[2], decisions_only=sys.argv[1] == "supervisor")
    else:
        scripted(sys.argv[1])
