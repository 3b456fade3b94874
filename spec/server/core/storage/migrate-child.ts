// Helper process for database.spec.ts: migrates the database named on the command line, so that
// the spec can race several migrations from separate processes. It prints "ready" once loaded
// and starts only when a line arrives on stdin, so that all of them start together.
// Usage: node --import tsx migrate-child.ts URL [SCHEMA]
import { once } from "node:events";
import { openDatabase } from "../../../../server/core/storage/database.ts";

const [url, schema] = process.argv.slice(2);
if (!url) throw new Error("usage: migrate-child.ts URL [SCHEMA]");
process.stdout.write("ready\n");
await once(process.stdin, "data");
process.stdin.destroy();
const storage = await openDatabase(url, schema ? { schema } : {});
try {
  await storage.migrate();
} finally {
  await storage.close();
}
process.stdout.write("migrated\n");
