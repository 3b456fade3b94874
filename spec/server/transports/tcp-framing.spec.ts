// TcpFraming's writes: what one event-loop turn writes goes out as one send (the socket is corked
// until the turn ends), but a long turn never holds a receiver's data back: every 16 KiB waiting
// is sent at once. A loaded server handles thousands of stanzas in one turn; before the bound,
// receivers got nothing until the turn ended and, at 3x overload, saw delivery stalls of seconds.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { xml } from "../../../protocol/xml/element.ts";
import { TcpFraming, type FramingEvents } from "../../../server/transports/framing.ts";

const options = { maxStanzaSize: 65_536, maxDepth: 32, tlsOptions: {}, serverEndPoint: () => undefined, graceMs: 1000 };
const quiet: FramingEvents = { streamStart() {}, element() {}, streamEnd() {}, error() {}, read() {}, lost() {} };

describe("TcpFraming writes", () => {
  let server: net.Server;
  let port = 0;
  const accepted: net.Socket[] = [];

  before(async () => {
    server = net.createServer((socket) => accepted.push(socket));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const s of accepted) s.destroy();
    server.close();
  });

  /** A connected pair: the framing on the server's side, the raw client socket and what it has read. */
  async function pair(): Promise<{ framing: TcpFraming; socket: net.Socket; client: net.Socket; received: () => string }> {
    const count = accepted.length;
    const client = net.connect(port, "127.0.0.1");
    await once(client, "connect");
    for (let i = 0; i < 100 && accepted.length === count; i++) await new Promise((r) => setTimeout(r, 10));
    const socket = accepted[accepted.length - 1];
    const framing = new TcpFraming(socket, false, options);
    framing.start(quiet);
    const chunks: string[] = [];
    client.setEncoding("utf8");
    client.on("data", (c: string) => chunks.push(c));
    return { framing, socket, client, received: () => chunks.join("") };
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond(), what);
  }

  test("a burst written in one turn arrives whole and in order", async () => {
    const { framing, client, received } = await pair();
    const n = 3000;
    framing.openStream({ from: "example.test", id: "s1", version: "1.0", "xml:lang": "en" });
    for (let i = 0; i < n; i++) {
      framing.writeElement(xml("message", { to: `u${i % 7}@example.test`, id: `m${i}` }, xml("body", {}, `message number ${i} & more`)));
    }
    await until(() => received().split("<message").length - 1 === n, `all ${n} messages arrive`);
    const ids = [...received().matchAll(/id=["'](m\d+)["']/g)].map((m) => m[1]);
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `m${i}`));
    assert.ok(received().includes("message number 2999 &amp; more"));
    client.destroy();
  });

  test("a long turn hands its data to the network every 16 KiB instead of holding it to the end", async () => {
    const { framing, socket, client, received } = await pair();
    const body = "x".repeat(200);
    let waitingAtEnd = -1;
    // One synchronous turn writing about 600 KiB: without the bound, all of it would wait in the
    // process until the turn ended.
    for (let i = 0; i < 2500; i++) framing.writeElement(xml("message", { id: `b${i}` }, xml("body", {}, body)));
    waitingAtEnd = socket.writableLength;
    assert.ok(waitingAtEnd < 64 * 1024, `${waitingAtEnd} bytes still waiting in the process at the end of the turn`);
    await until(() => received().includes('id="b2499"'), "the last message arrives");
    client.destroy();
  });

  test("writes made over several turns all arrive, in order", async () => {
    const { framing, client, received } = await pair();
    framing.writeElement(xml("presence", { id: "p1" }));
    framing.writeElement(xml("presence", { id: "p2" }));
    await until(() => received().includes('id="p2"'), "the first turn's writes arrive");
    framing.keepalive();
    framing.writeElement(xml("presence", { id: "p3" }));
    await until(() => received().includes('id="p3"'), "a later turn's writes arrive too");
    assert.ok(received().indexOf('id="p1"') < received().indexOf('id="p3"'));
    client.destroy();
  });

  test("close() sends what is waiting, then the stream's end", async () => {
    const { framing, client, received } = await pair();
    framing.writeElement(xml("message", { id: "last" }));
    framing.close();
    await once(client, "end");
    assert.match(received(), /id="last".*<\/stream:stream>$/s);
    client.destroy();
  });
});
