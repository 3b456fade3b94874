// server/http: the daemon's HTTP server (RFC 9110/9112) and its built-in /health and /metrics
// (Prometheus text format 0.0.4), end to end on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startTestServer, type TestServer } from "../../support/server.ts";
import { HttpRouter, HttpTransport } from "../../../server/http/index.ts";
import { MetricsRegistry } from "../../../server/core/metrics.ts";
import { ensureCertificates } from "../../../server/core/tls.ts";
import { xml } from "../../../protocol/xml/element.ts";
import ping from "../../../server/modules/ping/index.ts";
import { request } from "./request.ts";

function metricValue(text: string, sample: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  assert.ok(line, `no sample ${sample} in:\n${text}`);
  return Number(line.slice(sample.length + 1));
}

describe("the HTTP server of a running Parley", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: ["alice"], modules: [ping] });
  });
  after(() => t.stop());

  test("/health answers 200 JSON with status, uptime and the number of sessions, on HTTP and HTTPS", async () => {
    const alice = await t.login("alice");
    for (const url of [`http://127.0.0.1:${t.httpPort}/health`, `https://localhost:${t.httpsPort}/health`]) {
      const reply = await request(url, { ca: t.ca });
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers["content-type"]), /^application\/json/);
      const body = JSON.parse(reply.body.toString());
      assert.equal(body.status, "ok");
      assert.equal(typeof body.uptime, "number");
      assert.equal(body.sessions, 1);
    }
    await alice.close();
  });

  test("/metrics, from the loopback, counts connections, sessions, routed stanzas by kind, auth failures, memory and loop lag", async () => {
    const before = (await request(`http://127.0.0.1:${t.httpPort}/metrics`)).body.toString();
    const alice = await t.login("alice", { resource: "metrics" });
    await alice.iq(xml("iq", { type: "get", to: t.domain, id: "p1" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    const failing = await t.connect();
    await assert.rejects(failing.login({ username: "alice", password: "wrong" }));
    const reply = await request(`http://127.0.0.1:${t.httpPort}/metrics`);
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    const text = reply.body.toString();
    assert.match(text, /^# TYPE parley_stanzas_routed_total counter$/m);
    assert.ok(metricValue(text, 'parley_stanzas_routed_total{kind="iq"}') > (/kind="iq"/.test(before) ? metricValue(before, 'parley_stanzas_routed_total{kind="iq"}') : 0));
    assert.equal(metricValue(text, "parley_auth_failures_total"), (/parley_auth_failures_total \d/.test(before) ? metricValue(before, "parley_auth_failures_total") : 0) + 1);
    assert.equal(metricValue(text, "parley_sessions"), 1);
    assert.ok(metricValue(text, 'parley_connections{transport="c2s"}') >= 2);
    assert.ok(metricValue(text, "parley_process_resident_memory_bytes") > 1_000_000);
    assert.ok(metricValue(text, "parley_event_loop_lag_seconds") >= 0);
    await alice.close();
  });

  test("/metrics has the routing latency histogram, stanzas in and out by transport, stanza and stream errors by condition, and storage batch sizes", async () => {
    const scrape = async () => (await request(`http://127.0.0.1:${t.httpPort}/metrics`)).body.toString();
    const value = (text: string, series: string) => (text.includes(`${series} `) ? metricValue(text, series) : 0);
    const before = await scrape();
    const alice = await t.login("alice", { resource: "histogram" });
    await alice.iq(xml("iq", { type: "get", to: t.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    // An IQ nobody answers: the server generates service-unavailable.
    await alice.iq(xml("iq", { type: "get", to: t.domain }, xml("query", { xmlns: "urn:example:nothing" })));
    // Something the storage writer commits, then a stream error.
    await t.server.storage.writer.write({ kind: "archive", entries: [] });
    alice.write("<message xmlns='jabber:client'><unclosed></message>");
    assert.equal((await alice.waitClosed())?.condition, "not-well-formed");
    const text = await scrape();
    assert.match(text, /^# TYPE parley_routing_duration_seconds histogram$/m);
    const count = value(text, 'parley_routing_duration_seconds_count{kind="iq"}');
    assert.ok(count >= value(before, 'parley_routing_duration_seconds_count{kind="iq"}') + 2, "each routed IQ observed");
    assert.equal(value(text, 'parley_routing_duration_seconds_bucket{kind="iq",le="+Inf"}'), count);
    assert.ok(value(text, 'parley_routing_duration_seconds_bucket{kind="iq",le="1"}') <= count);
    assert.ok(value(text, 'parley_routing_duration_seconds_sum{kind="iq"}') > 0);
    assert.ok(value(text, 'parley_stanzas_in_total{transport="tcp"}') >= value(before, 'parley_stanzas_in_total{transport="tcp"}') + 2);
    assert.ok(value(text, 'parley_stanzas_out_total{transport="tcp"}') >= value(before, 'parley_stanzas_out_total{transport="tcp"}') + 2);
    assert.equal(value(text, 'parley_stanza_errors_total{condition="service-unavailable"}'), value(before, 'parley_stanza_errors_total{condition="service-unavailable"}') + 1);
    assert.equal(value(text, 'parley_stream_errors_total{condition="not-well-formed"}'), value(before, 'parley_stream_errors_total{condition="not-well-formed"}') + 1);
    assert.match(text, /^# TYPE parley_storage_batch_operations histogram$/m);
    assert.ok(value(text, "parley_storage_batch_operations_count") > value(before, "parley_storage_batch_operations_count"), "a batch was committed");
  });

  test("unknown paths are 404, a body without Content-Length 411, a body over the route's limit 413", async () => {
    assert.equal((await request(`http://127.0.0.1:${t.httpPort}/nothing-here`)).status, 404);
    assert.equal((await request(`http://127.0.0.1:${t.httpPort}/healthz`)).status, 404);
    const chunked = await request(`http://127.0.0.1:${t.httpPort}/health`, { method: "POST", headers: { "Transfer-Encoding": "chunked" }, body: "x" });
    assert.equal(chunked.status, 411);
    const big = await rawExchange(t.httpPort, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    assert.match(big, /^HTTP\/1\.1 413 /);
    assert.equal((await request(`http://127.0.0.1:${t.httpPort}/health`, { method: "DELETE" })).status, 405);
  });
});

/** Sends raw bytes and returns whatever comes back before the server closes (or 5 s). */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let received = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, 5000);
    socket.on("data", (d) => {
      received += d.toString();
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      if (received) resolve(received);
      else reject(e);
    });
    socket.write(data);
  });
}

describe("limits and configuration", () => {
  test("a client that never finishes its headers is cut off (slowloris), with 408", async () => {
    const t = await startTestServer({ modules: [] });
    const web = new HttpTransport(t.server, {
      certificates: await ensureCertificates(t.config),
      config: { ...t.config.http, port: 0, tlsPort: null },
      limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 },
    });
    try {
      await web.listen();
      const reply = await rawExchange(web.plainPorts[0], "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
      assert.match(reply, /^HTTP\/1\.1 408 /);
    } finally {
      await web.stop();
      await t.stop();
    }
  });

  test("/metrics is refused to addresses not in metrics_allow; /health stays open", async () => {
    const t = await startTestServer({ toml: "[http]\nmetrics_allow = []\n", modules: [] });
    try {
      assert.equal((await request(`http://127.0.0.1:${t.httpPort}/metrics`)).status, 403);
      assert.equal((await request(`http://127.0.0.1:${t.httpPort}/health`)).status, 200);
    } finally {
      await t.stop();
    }
  });

  test("[http] enabled = false starts no HTTP server; tls_port = 0 only the plain one", async () => {
    const off = await startTestServer({ toml: "[http]\nenabled = false\n", modules: [] });
    assert.equal(off.server.transports.some((tr) => tr.name === "http"), false);
    await off.stop();
    const plain = await startTestServer({ toml: "[http]\ntls_port = 0\n", modules: [] });
    assert.equal(plain.httpsPort, 0);
    assert.equal((await request(`http://127.0.0.1:${plain.httpPort}/health`)).status, 200);
    await plain.stop();
  });

  test("server.stop() closes the HTTP listeners", async () => {
    const t = await startTestServer({ modules: [] });
    const port = t.httpPort;
    await t.stop();
    await assert.rejects(request(`http://127.0.0.1:${port}/health`), /ECONNREFUSED/);
  });
});

describe("HttpRouter", () => {
  test("the longest registered prefix wins, and a prefix matches whole path segments only", () => {
    const router = new HttpRouter();
    const a = () => {};
    const b = () => {};
    router.register("/upload", a);
    router.register("/upload/special", b);
    assert.equal(router.match("/upload/x/y")?.route.handler, a);
    assert.equal(router.match("/upload/x/y")?.rest, "/x/y");
    assert.equal(router.match("/upload")?.rest, "");
    assert.equal(router.match("/upload/special/z")?.route.handler, b);
    assert.equal(router.match("/uploads/x"), null);
    assert.throws(() => router.register("/upload", a), /already registered/);
    assert.throws(() => router.register("upload", a), /starts with \//);
    assert.throws(() => router.register("/upload/", a), /does not end/);
  });
});

describe("MetricsRegistry", () => {
  test("renders HELP, TYPE and samples with escaped, sorted labels", () => {
    const r = new MetricsRegistry();
    const c = r.counter("x_total", "Things.");
    c.inc({ kind: 'a"b\\c\nd', a: "1" });
    c.inc({ kind: 'a"b\\c\nd', a: "1" }, 2);
    r.gauge("y", "Now.", () => 7);
    r.gauge("z", "Broken.", () => {
      throw new Error("no");
    });
    assert.equal(r.render(), '# HELP x_total Things.\n# TYPE x_total counter\nx_total{a="1",kind="a\\"b\\\\c\\nd"} 3\n# HELP y Now.\n# TYPE y gauge\ny 7\n');
    assert.throws(() => c.inc({}, -1), /only goes up/);
    assert.throws(() => r.counter("x_total", "again"), /already registered/);
    assert.throws(() => r.counter("bad name", "x"), /invalid metric name/);
  });
});
