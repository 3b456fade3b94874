// XEP-0156 (Discovering Alternative XMPP Connection Methods, v1.4.0) §3: the HTTP lookup.
// /.well-known/host-meta is an XRD document (RFC 6415) and /.well-known/host-meta.json its JSON
// form, each naming the WebSocket (RFC 7395) and BOSH (XEP-0206) endpoints of the domain the
// request's Host names. URLs come from `http.public_url` when set (a reverse proxy), otherwise
// from the listeners: HTTPS when there is a TLS port, plain HTTP for a request from loopback.
// CORS lets a web client on another origin read them.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server } from "../core/server.ts";
import { escapeAttr } from "../../protocol/xml/serialize.ts";
import { isLoopback } from "../transports/framing.ts";
import { WEBSOCKET_PATH } from "../transports/websocket.ts";
import { BOSH_PATH } from "../transports/bosh.ts";
import { sendText, type HttpRequestContext } from "./index.ts";

export const ALT_WEBSOCKET = "urn:xmpp:alt-connections:websocket";
export const ALT_BOSH = "urn:xmpp:alt-connections:xbosh";
const XRD_NS = "http://docs.oasis-open.org/ns/xri/xrd-1.0";

export interface HostMetaLinks {
  websocket: boolean;
  bosh: boolean;
}

/** The alternative connection methods for `base` (an http(s) URL without a trailing slash). */
export function hostMetaLinks(base: string, links: HostMetaLinks): Array<{ rel: string; href: string }> {
  const out: Array<{ rel: string; href: string }> = [];
  if (links.websocket) out.push({ rel: ALT_WEBSOCKET, href: `${base.replace(/^http/i, "ws")}${WEBSOCKET_PATH}` });
  if (links.bosh) out.push({ rel: ALT_BOSH, href: `${base}${BOSH_PATH}` });
  return out;
}

export function hostMetaHandler(
  server: Server,
  baseUrl: (host: string, preferPlain: boolean) => string,
  links: HostMetaLinks,
  format: "xrd" | "json",
): (req: IncomingMessage, res: ServerResponse, ctx: HttpRequestContext) => void {
  return (req, res, ctx) => {
    const cors = { "Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600" };
    if (ctx.path !== "") return sendText(res, 404, "not found\n");
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...cors, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS" }).end();
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, "method not allowed\n", { Allow: "GET, HEAD, OPTIONS" });
    const named = (req.headers.host ?? "").replace(/:\d+$/, "").replace(/\.$/, "").toLowerCase();
    const host = server.isLocalHost(named) ? named : server.hosts[0];
    const found = hostMetaLinks(baseUrl(host, !ctx.secure && isLoopback(ctx.remoteAddress)), links);
    if (format === "json") {
      return sendText(res, 200, `${JSON.stringify({ links: found })}\n`, { ...cors, "Content-Type": "application/json" });
    }
    const body =
      `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${XRD_NS}'>\n` +
      found.map((l) => `  <Link rel='${escapeAttr(l.rel)}' href='${escapeAttr(l.href)}'/>\n`).join("") +
      `</XRD>\n`;
    sendText(res, 200, body, { ...cors, "Content-Type": "application/xrd+xml; charset=utf-8" });
  };
}
