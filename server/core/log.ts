// Structured logs (pino): one JSON object a line on stdout, or quiet in tests.
import { pino, type Logger as PinoLogger, type LevelWithSilent } from "pino";

export type Logger = PinoLogger;

export function createLogger(level: LevelWithSilent = "info"): Logger {
  return pino({ level, base: { name: "parley" }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that writes nothing: specs and tools that want no output. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
