// Structured logs (pino): one JSON object a line on stdout, or quiet in tests.
import { pino, type Logger as PinoLogger, type LevelWithSilent } from "pino";

export type Logger = PinoLogger;

/**
 * Lines are written asynchronously: a synchronous write(2) per line cost about 65 µs of the
 * event loop at every login (two info lines). Lines logged while a write is in flight go out
 * together in the next one, nothing waits for a buffer to fill (a quiet server's line is
 * written at once), and pino flushes what is left synchronously when the process exits.
 */
export function createLogger(level: LevelWithSilent = "info"): Logger {
  return pino(
    { level, base: { name: "parley" }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing: specs and tools that want no output. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
