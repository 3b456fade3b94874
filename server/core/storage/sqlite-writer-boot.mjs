// Entry point of the SQLite writer's worker_thread (sqlite-writer.ts). Parley is TypeScript run
// by tsx, and a worker does not always get tsx from its parent: `tsx` passes it on, while on
// Node 20 neither `node --import tsx` (npm test, bench) nor `parley` (server/cli/bin.mjs, which
// registers it in the main thread) do. So: import the worker's .ts file as it is, and only if this
// thread cannot load TypeScript, register tsx in a namespace of its own and import it through that
// (a second URL, so the failed attempt is not what the module cache answers).
try {
  await import("./sqlite-writer-worker.ts");
} catch (error) {
  if (error?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw error;
  const { register } = await import("tsx/esm/api");
  await register({ namespace: "parley-sqlite-writer" }).import("./sqlite-writer-worker.ts", import.meta.url);
}
