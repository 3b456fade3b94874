// Structured logs (pino): one JSON object a line on stdout, or quiet in tests.
import { writeSync } from "node:fs";
import { pino, type Logger as PinoLogger, type LevelWithSilent } from "pino";

export type Logger = PinoLogger;

/** A line waits at most this long: an operator watching stdout sees it at once. */
const FLUSH_DELAY_MS = 50;
/** A burst is written as soon as this much waits. */
const FLUSH_BYTES = 64 * 1024;
/** Beyond this, lines are dropped (and counted) rather than held while stdout does not take them. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** At exit, how long a descriptor that says "try again" (a full non-blocking pipe) is waited for. */
const EXIT_WAIT_MS = 2_000;

/**
 * pino's destination: the lines logged within 50 ms are written together, with one synchronous
 * write. At a login's two lines 370 times a second (2026-11-28, to a file, two runs each), the
 * writing cost 80–90 µs of CPU per login with pino's asynchronous destination (a thread-pool
 * round trip per line), 30–50 µs with a synchronous write per line, and 10–19 µs batched.
 * A batch never hands work to the thread pool. A descriptor that does not take everything keeps
 * the rest for the next flush; what cannot be written at exit within EXIT_WAIT_MS is lost, and
 * so is what is logged beyond MAX_PENDING_BYTES while stdout takes nothing (with a line saying
 * how many). A stdout that blocks (a full blocking pipe) blocks the writer, as any synchronous
 * log does.
 */
export class BatchedLines {
  #pending: string[] = [];
  #pendingBytes = 0;
  /** The tail of an earlier batch the descriptor did not take. */
  #unwritten: Buffer | null = null;
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly fd: number) {
    process.on("exit", () => this.flush(true));
  }

  write(line: string): boolean {
    if (this.#pendingBytes + (this.#unwritten?.length ?? 0) >= MAX_PENDING_BYTES) {
      this.#dropped++;
      return true;
    }
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#pendingBytes >= FLUSH_BYTES) this.flush(false);
    else this.#schedule();
    return true;
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => this.flush(false), FLUSH_DELAY_MS);
    this.#timer.unref();
  }

  /** Writes what waits; `exiting` retries a full descriptor for a while instead of keeping the rest. */
  flush(exiting: boolean): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#dropped > 0) {
      this.#pending.push(`${JSON.stringify({ level: 40, time: new Date().toISOString(), name: "parley", msg: `${this.#dropped} log lines dropped: stdout did not take them` })}\n`);
      this.#dropped = 0;
    }
    if (this.#pending.length === 0 && this.#unwritten === null) return;
    const fresh = Buffer.from(this.#pending.join(""), "utf8");
    const data = this.#unwritten ? Buffer.concat([this.#unwritten, fresh]) : fresh;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#unwritten = null;
    const deadline = Date.now() + EXIT_WAIT_MS;
    let offset = 0;
    while (offset < data.length) {
      try {
        offset += writeSync(this.fd, data, offset);
      } catch (err) {
        // EPIPE and the like: nobody reads stdout any more; the lines have nowhere to go.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return;
        if (!exiting || Date.now() > deadline) break;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
    if (offset < data.length) {
      this.#unwritten = data.subarray(offset);
      if (!exiting) this.#schedule();
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export function createLogger(level: LevelWithSilent = "info"): Logger {
  return pino({ level, base: { name: "parley" }, timestamp: pino.stdTimeFunctions.isoTime }, new BatchedLines(1));
}

/** A logger that writes nothing: specs and tools that want no output. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
