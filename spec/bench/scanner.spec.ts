// The load generator's stream scanner (bench/load/scanner.ts) over RFC 6120 §4 streams as the
// three servers send them: split anywhere, either quote style, nested same-name elements.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { StreamScanner, attribute, childText, escapeXml, unescapeXml, type TopLevel } from "../../bench/load/scanner.ts";

function scanAll(chunks: string[]): TopLevel[] {
  const s = new StreamScanner();
  const out: TopLevel[] = [];
  for (const c of chunks) {
    s.push(c);
    for (let item = s.next(); item !== null; item = s.next()) out.push(item);
  }
  return out;
}

const STREAM =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>" +
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>" +
  " \n" +
  "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" +
  '<message from="a@localhost/r" type="chat"><body>bench 1 2 3</body><forwarded xmlns="urn:xmpp:forward:0"><message type="chat"><body>inner</body></message></forwarded></message>' +
  "<messages-are-not-messages/>" +
  "<iq type='result' id='bench-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@localhost/r</jid></bind></iq>" +
  "</stream:stream>";

describe("StreamScanner", () => {
  test("finds the header, each top-level element whole, and the end of the stream", () => {
    const items = scanAll([STREAM]);
    assert.deepEqual(
      items.map((i) => (i.kind === "element" ? i.name : i.kind)),
      ["open", "stream:features", "proceed", "message", "messages-are-not-messages", "iq", "close"],
    );
    const message = items[3];
    assert.ok(message.kind === "element");
    assert.ok(message.raw.endsWith("</forwarded></message>"), "a nested <message/> does not end the outer one");
    assert.equal(childText(message.raw, "body"), "bench 1 2 3");
  });

  test("the same items whatever the chunk boundaries", () => {
    const whole = scanAll([STREAM]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: STREAM.length }), { maxLength: 30 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(STREAM.slice(last, p));
          last = p;
        }
        chunks.push(STREAM.slice(last));
        assert.deepEqual(scanAll(chunks), whole);
      }),
    );
  });

  test("waits for the rest of an element instead of guessing", () => {
    const s = new StreamScanner();
    s.push("<message type='chat'><body>half");
    assert.equal(s.next(), null);
    s.push("</body></message>");
    const item = s.next();
    assert.ok(item?.kind === "element" && item.name === "message");
  });

  test("reset forgets what was buffered (a new stream after STARTTLS or SASL success)", () => {
    const s = new StreamScanner();
    s.push("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><garbage");
    assert.ok(s.next()?.kind === "element");
    s.reset();
    s.push("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
    assert.equal(s.next()?.kind, "open");
  });

  test("refuses to buffer an element without end", () => {
    const s = new StreamScanner();
    s.push("<message><body>");
    assert.throws(() => s.push("x".repeat(5 * 1024 * 1024)));
  });
});

describe("attribute and childText", () => {
  test("read either quote style, unescaped, and only whole names", () => {
    const tag = `<iq xml:id='no' id="a&amp;b" type='result' to='me@x/&apos;r'>`;
    assert.equal(attribute(tag, "id"), "a&b");
    assert.equal(attribute(tag, "type"), "result");
    assert.equal(attribute(tag, "to"), "me@x/'r");
    assert.equal(attribute(tag, "from"), undefined);
    assert.equal(childText("<message><bodyx>no</bodyx><body>yes &lt;3</body></message>", "body"), "yes <3");
    assert.equal(childText("<message><body/></message>", "body"), "");
    assert.equal(childText("<message/>", "body"), undefined);
  });

  test("escapeXml and unescapeXml are inverse", () => {
    fc.assert(fc.property(fc.string(), (text) => assert.equal(unescapeXml(escapeXml(text)), text)));
  });
});
