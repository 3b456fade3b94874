"""A scripted slixmpp client for Parley's interop specs (Debian's python3-slixmpp).

Usage: /usr/bin/python3 slixmpp_client.py HOST PORT JID PASSWORD CAFILE SCRIPT_JSON
SCRIPT_JSON is a list of steps: {"ping": "domain"}, {"roster": true}, {"presence": true},
{"send": {"to": jid, "body": text}}, {"expect_message": {"from_bare": jid, "timeout": s}},
{"add_contact": jid}, {"sleep": s}. Prints one JSON object per line for each result and
exits 0 when every step succeeded. Everything stays on 127.0.0.1: DNS lookups are replaced.
"""
import asyncio
import json
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Scripted(slixmpp.ClientXMPP):
    def __init__(self, jid, password, host, port, cafile, steps):
        super().__init__(jid, password)
        self.host, self.port, self.steps = host, int(port), steps
        self.inbox = asyncio.Queue()
        self.ok = False
        ctx = ssl.create_default_context(cafile=cafile)
        self.ssl_context = ctx
        self.use_aiodns = False
        self.register_plugin("xep_0199")
        self.add_event_handler("session_start", self.run_script)
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))
        self.add_event_handler("failed_auth", lambda _: emit(event="failed_auth"))

    async def get_dns_records(self, domain, port=None):
        return [(domain, self.host, self.port)]

    async def run_script(self, _event):
        emit(event="session_start", jid=str(self.boundjid))
        try:
            for step in self.steps:
                await self.run_step(step)
            self.ok = True
        except Exception as e:  # noqa: BLE001 - report any failure to the spec
            emit(event="error", error=repr(e))
        finally:
            self.disconnect()

    async def run_step(self, step):
        if "ping" in step:
            rtt = await self.plugin["xep_0199"].ping(jid=step["ping"], timeout=5)
            emit(step="ping", ok=True, rtt=rtt)
        elif "roster" in step:
            await self.get_roster(timeout=5)
            emit(step="roster", items=sorted(str(j) for j in self.client_roster.keys()))
        elif "presence" in step:
            self.send_presence()
            emit(step="presence", ok=True)
        elif "add_contact" in step:
            self.send_presence_subscription(pto=step["add_contact"])
            emit(step="add_contact", ok=True)
        elif "send" in step:
            self.send_message(mto=step["send"]["to"], mbody=step["send"]["body"], mtype="chat")
            emit(step="send", ok=True)
        elif "expect_message" in step:
            want = step["expect_message"]
            while True:
                msg = await asyncio.wait_for(self.inbox.get(), timeout=want.get("timeout", 5))
                if msg["type"] in ("chat", "normal") and msg["from"].bare == want["from_bare"]:
                    emit(step="message", body=msg["body"], frm=str(msg["from"]))
                    break
        elif "sleep" in step:
            await asyncio.sleep(step["sleep"])
        else:
            raise ValueError(f"unknown step {step}")


def main():
    host, port, jid, password, cafile, script = sys.argv[1:7]
    client = Scripted(jid, password, host, port, cafile, json.loads(script))
    client.connect(address=(host, int(port)))
    loop = asyncio.get_event_loop()
    loop.run_until_complete(asyncio.wait_for(client.disconnected, timeout=30))
    emit(event="done", ok=client.ok)
    sys.exit(0 if client.ok else 1)


if __name__ == "__main__":
    main()
