"""A slixmpp client driven over stdin/stdout, for Parley's interop specs (RFC 6120, RFC 6121,
XEP-0012, XEP-0199, XEP-0368) with Debian's python3-slixmpp 1.8.

Usage: /usr/bin/python3 slixmpp_client.py OPTIONS_JSON
OPTIONS_JSON: {"host", "port", "jid", "password", "cafile", "direct_tls": bool,
               "mechanisms": [names] or null, "channel_binding": bool}
Writes one JSON object per line: {"event": ...} for what the library reports, and
{"reply": id, "ok": bool, ...} for each command. Reads one JSON command per line:
{"id": n, "cmd": name, ...}, run by Driver.cmd_<name> (ping, roster_get, roster_state,
roster_add, roster_remove, subscribe, authorize, presence, message, last, logout); closing stdin
logs out. Exits when the stream has ended, or 60 s after starting, whichever comes first.
PARLEY_SLIXMPP_LOG=1 logs slixmpp's debug output (every stanza) to stderr.
Everything stays on 127.0.0.1: DNS lookups are replaced.
"""
import asyncio
import json
import logging
import os
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

LIFETIME_SECONDS = 60
IQ_TIMEOUT_SECONDS = 5


def emit(**kw):
    print(json.dumps(kw), flush=True)


def roster_snapshot(roster, own_bare):
    """What slixmpp believes about each contact, from its own roster bookkeeping (which also
    tracks the account's own resources under its bare JID: left out)."""
    out = {}
    for jid in roster.keys():
        if str(jid) == own_bare:
            continue
        item = roster[jid]
        out[str(jid)] = {
            "subscription": item["subscription"],
            "pending_out": bool(item["pending_out"]),
            "name": item["name"],
        }
    return out


def stanza_error(iq_or_stanza):
    err = iq_or_stanza["error"]
    return {"condition": err["condition"], "type": err["type"], "text": err["text"]}


class Driver(slixmpp.ClientXMPP):
    def __init__(self, opts):
        mechanisms = opts.get("mechanisms")
        super().__init__(opts["jid"], opts["password"])
        if mechanisms:
            self["feature_mechanisms"].use_mechs = set(mechanisms)
        if not opts.get("channel_binding", True):
            # Without this, slixmpp tells a server that offered -PLUS that it "could bind but
            # thinks the server cannot" (gs2 flag "y"), which RFC 5802 §6 makes a downgrade.
            creds = self["feature_mechanisms"]._default_credentials

            def no_binding(required, optional):
                values = creds(required, optional)
                if "channel_binding" in values:
                    values["channel_binding"] = None
                return values

            self["feature_mechanisms"].sasl_callback = no_binding
        self.host, self.port = opts["host"], int(opts["port"])
        self.direct_tls = bool(opts.get("direct_tls"))
        self.ssl_context = ssl.create_default_context(cafile=opts["cafile"])
        self.use_aiodns = False
        # asyncio keeps only weak references to tasks: a task nobody holds can be collected
        # while it waits (for stdin, for an IQ answer).
        self.tasks = set()
        # Subscription requests are answered by the spec, not automatically.
        self.auto_authorize = None
        self.auto_subscribe = False
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0012")
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("auth_success", lambda _: emit(event="auth_success", mechanism=self["feature_mechanisms"].mech.name))
        self.add_event_handler("failed_auth", lambda s: emit(event="failed_auth", mechanism=self["feature_mechanisms"].mech.name, condition=s["condition"]))
        self.add_event_handler("failed_all_auth", lambda _: emit(event="failed_all_auth"))
        self.add_event_handler("stream_error", lambda e: emit(event="stream_error", condition=e["condition"], text=e["text"]))
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("message_error", self.on_message)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("roster_update", self.on_roster_update)
        self.add_event_handler("roster_subscription_request", lambda p: emit(event="subscription_request", frm=str(p["from"])))
        self.add_event_handler("got_online", lambda p: emit(event="got_online", frm=str(p["from"])))
        self.add_event_handler("got_offline", lambda p: emit(event="got_offline", frm=str(p["from"])))

    async def get_dns_records(self, domain, port=None):
        return [(domain, self.host, self.port)]

    def keep(self, task):
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_session_start(self, _event):
        emit(event="session_start", jid=str(self.boundjid))
        self.keep(asyncio.ensure_future(self.read_commands()))

    def on_message(self, msg):
        emit(
            event="message",
            frm=str(msg["from"]),
            to=str(msg["to"]),
            type=msg["type"],
            body=msg["body"],
            error=stanza_error(msg) if msg["type"] == "error" else None,
        )

    def on_presence(self, pres):
        emit(
            event="presence",
            frm=str(pres["from"]),
            to=str(pres["to"]),
            type=pres["type"],
            status=pres["status"],
            show=pres["show"],
        )

    def on_roster_update(self, iq):
        items = {str(j): {"subscription": i["subscription"], "ask": i["ask"]} for j, i in iq["roster"]["items"].items()}
        # slixmpp's own handler for this event has already applied the change.
        emit(event="roster_update", push=iq["type"] == "set", items=items, roster=roster_snapshot(self.client_roster, self.boundjid.bare))

    async def read_commands(self):
        reader = asyncio.StreamReader()
        await self.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                self.disconnect()
                return
            command = json.loads(line)
            self.keep(asyncio.ensure_future(self.run_command(command)))

    async def run_command(self, command):
        cid = command.pop("id")
        name = command.pop("cmd")
        try:
            result = await getattr(self, "cmd_" + name)(**command)
            emit(reply=cid, ok=True, **(result or {}))
        except IqError as e:
            emit(reply=cid, ok=False, error=stanza_error(e.iq))
        except IqTimeout:
            emit(reply=cid, ok=False, error={"condition": "timeout"})
        except Exception as e:  # noqa: BLE001 - the spec sees every failure
            emit(reply=cid, ok=False, error={"condition": "exception", "text": repr(e)})

    # ---- commands -------------------------------------------------------------------------

    async def cmd_ping(self, jid):
        await self.plugin["xep_0199"].ping(jid=jid, timeout=IQ_TIMEOUT_SECONDS)

    async def cmd_roster_get(self):
        await self.get_roster(timeout=IQ_TIMEOUT_SECONDS)
        return {"roster": roster_snapshot(self.client_roster, self.boundjid.bare)}

    async def cmd_roster_state(self):
        return {"roster": roster_snapshot(self.client_roster, self.boundjid.bare)}

    async def cmd_roster_add(self, jid, name=None):
        await self.update_roster(jid, name=name or "", timeout=IQ_TIMEOUT_SECONDS)

    async def cmd_roster_remove(self, jid):
        await self.del_roster_item(jid)

    async def cmd_subscribe(self, jid):
        self.client_roster[jid].subscribe()

    async def cmd_authorize(self, jid):
        self.client_roster[jid].authorize()

    async def cmd_presence(self, status=None, show=None, priority=None):
        self.send_presence(pstatus=status, pshow=show, ppriority=priority)

    async def cmd_message(self, to, body, type="chat"):
        self.send_message(mto=to, mbody=body, mtype=type)

    async def cmd_last(self, jid):
        iq = await self.plugin["xep_0012"].get_last_activity(jid, timeout=IQ_TIMEOUT_SECONDS)
        return {"seconds": iq["last_activity"]["seconds"], "status": iq["last_activity"]["status"]}

    async def cmd_logout(self, status=None):
        self.send_presence(ptype="unavailable", pstatus=status)
        self.disconnect()


def main():
    if os.environ.get("PARLEY_SLIXMPP_LOG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    opts = json.loads(sys.argv[1])
    client = Driver(opts)
    client.connect(address=(opts["host"], int(opts["port"])), use_ssl=client.direct_tls)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(client.disconnected, timeout=LIFETIME_SECONDS))
    except asyncio.TimeoutError:
        emit(event="lifetime_exceeded")
    emit(event="exit")


if __name__ == "__main__":
    main()
