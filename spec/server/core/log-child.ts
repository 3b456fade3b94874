// Helper process for log.spec.ts: logs through createLogger as the daemon does. It logs "first"
// at once and then waits; a line on stdin makes it log `count` lines and exit at once.
// Usage: node --import tsx log-child.ts COUNT
import { once } from "node:events";
import { createLogger } from "../../../server/core/log.ts";

const count = Number(process.argv[2] ?? "0");
const log = createLogger("info");
log.info({ n: 0 }, "first");
await once(process.stdin, "data");
for (let n = 1; n <= count; n++) log.info({ n }, "burst");
process.exit(0);
