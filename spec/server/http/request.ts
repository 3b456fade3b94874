// Test support: one HTTP(S) request to a Parley on 127.0.0.1, whatever host name the URL
// names (slot URLs say https://localhost:<port>/...); TLS is checked against the test CA.
import http from "node:http";
import https from "node:https";

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** The test server's certificate, for https URLs. */
  ca?: string;
}

export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const secure = u.protocol === "https:";
  const options: https.RequestOptions = {
    host: "127.0.0.1",
    port: Number(u.port || (secure ? 443 : 80)),
    path: `${u.pathname}${u.search}`,
    method: opts.method ?? "GET",
    headers: { Host: u.host, ...opts.headers },
    agent: false,
    ...(secure ? { servername: u.hostname, ca: opts.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error("request timeout")));
    req.on("error", reject);
    req.end(opts.body);
  });
}
