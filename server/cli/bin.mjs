#!/usr/bin/env node
// The `parley` executable (package.json "bin"): Parley is TypeScript run by tsx, so this small
// JavaScript file registers tsx's loader, resolved from here rather than from the current
// directory, then hands the arguments to server/cli/main.ts.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exit(await main(process.argv.slice(2)));
