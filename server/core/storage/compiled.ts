// Reads whose shape never changes, built and compiled by Kysely once.
//
// Kysely builds an operation tree, freezes it and walks it into SQL at every call. For the
// lookups a login makes (the account row, the roster, a module's key, the offline queue) that
// walk cost more than SQLite's own work on the row: in a login profile on 2026-11-28, Kysely's
// frames were about 15% of the event loop's busy time, building and compiling a large part of it.
// A compiled read keeps the SQL text and where each argument goes, and hands Kysely's executor
// a finished query, so connections, transactions' mutex and result plugins work as before.
import { createQueryId, type Compilable, type CompiledQuery, type Kysely } from "kysely";

/** What a compiled read binds: every argument becomes one or more query parameters. */
type Arg = string | number | null;

/** A parameter is either argument number `arg` or a constant the query itself holds. */
type Slot = { arg: number } | { value: unknown };

interface Compiled {
  query: CompiledQuery;
  slots: Slot[];
}

// An argument is built into the query as this marker, so that its place among the compiled
// parameters can be found. A NUL never appears in a JID, a module name or a key's SQL text.
const MARK = "\u0000parley-arg-";

function compile<Row>(build: (...args: string[]) => Compilable<Row>, arity: number): Compiled {
  const marks = Array.from({ length: arity }, (_, i) => `${MARK}${i}\u0000`);
  const query = build(...marks).compile();
  if (query.sql.includes(MARK)) throw new Error("a compiled read's argument was written into its SQL text instead of bound as a parameter");
  const seen = new Set<number>();
  const slots = query.parameters.map((value): Slot => {
    const arg = typeof value === "string" ? marks.indexOf(value) : -1;
    if (arg < 0) return { value };
    seen.add(arg);
    return { arg };
  });
  if (seen.size !== arity) throw new Error(`a compiled read uses ${seen.size} of its ${arity} arguments`);
  return { query, slots };
}

/**
 * `build` makes the query from its arguments (each used only where Kysely binds a value);
 * the result runs it with new arguments without building it again. Compiled on first use.
 */
export function compiledRead<DB, Args extends Arg[], Row>(
  db: Kysely<DB>,
  build: (...args: Args) => Compilable<Row>,
): (...args: Args) => Promise<Row[]> {
  let compiled: Compiled | null = null;
  const arity = build.length;
  return async (...args: Args): Promise<Row[]> => {
    compiled ??= compile(build as unknown as (...a: string[]) => Compilable<Row>, arity);
    const { query, slots } = compiled;
    const parameters = slots.map((slot) => ("arg" in slot ? args[slot.arg] : slot.value));
    const result = await db.executeQuery<Row>({ query: query.query, sql: query.sql, parameters, queryId: createQueryId() });
    return result.rows;
  };
}
