#!/usr/bin/env node
// The `parley-conformance` command (package.json "bin"): loads the TypeScript runner through
// tsx, so that `npx parley-conformance ...` works from a checkout without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli.ts");
process.exitCode = await main(process.argv.slice(2));
