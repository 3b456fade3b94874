// Starts a Parley for conformance/reference/run.sh the way the end-to-end specs do
// (spec/support/server.ts: built-in modules, a fresh SQLite file, accounts alice, bob and carol
// with passwords pass-<name>), prints where it listens as one JSON line, writes its certificate
// to the file named by the first argument, and runs until SIGTERM or SIGINT.
import { writeFileSync } from "node:fs";
import { startTestServer } from "../support/server.ts";

const caFile = process.argv[2];
if (!caFile) {
  process.stderr.write("usage: parley-server.ts <file to write the CA certificate to>\n");
  process.exit(2);
}
const t = await startTestServer({ users: ["alice", "bob", "carol"] });
writeFileSync(caFile, t.ca);
process.stdout.write(JSON.stringify({ host: t.host, port: t.port, directTlsPort: t.directTlsPort, domain: t.domain }) + "\n");
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await t.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
