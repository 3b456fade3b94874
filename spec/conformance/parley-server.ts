// Starts a Parley for conformance/reference/run.sh the way the end-to-end specs do
// (spec/support/server.ts: built-in modules, a fresh SQLite file, accounts alice, bob and carol
// with passwords pass-<name>), prints where it listens as one JSON line, writes its certificate
// to the file named by the first argument, and runs until SIGTERM or SIGINT.
import { writeFileSync } from "node:fs";
import { startTestServer } from "../support/server.ts";
import { TestRoutes, startFederated } from "../server/transports/s2s-support.ts";

const caFile = process.argv[2];
if (!caFile) {
  process.stderr.write("usage: parley-server.ts <file to write the CA certificate to>\n");
  process.exit(2);
}
// With a second argument, a second Parley (parley-peer.test, accounts alice, bob and carol too)
// federates with this one for the scenarios across servers (--peer-*); its CA goes to that file.
const peerCaFile = process.argv[3];
const routes = new TestRoutes();
const users = ["alice", "bob", "carol"];
const t = peerCaFile ? await startFederated(routes, { domain: "localhost", address: "127.0.0.77", users }) : await startTestServer({ users });
const peer = peerCaFile ? await startFederated(routes, { domain: "parley-peer.test", address: "127.0.0.78", users }) : null;
writeFileSync(caFile, t.ca);
if (peer) writeFileSync(peerCaFile, peer.ca);
process.stdout.write(JSON.stringify({ host: t.host, port: t.port, directTlsPort: t.directTlsPort, httpPort: t.httpPort, domain: t.domain, ...(peer ? { peerPort: peer.port, peerDomain: peer.domain } : {}) }) + "\n");
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await t.stop();
  await peer?.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
