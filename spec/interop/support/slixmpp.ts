// Interop support (RFC 6120, RFC 6121, XEP-0012, XEP-0368): drives Debian's slixmpp
// (/usr/bin/python3, python3-slixmpp 1.8) through spec/interop/slixmpp_client.py, one process per
// client, commands on stdin, events and replies on stdout. Every wait is bounded; the process is
// killed when the spec closes it or when the spec process exits.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestServer } from "../../support/server.ts";

export const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../slixmpp_client.py", import.meta.url));

/** Whether slixmpp can run here (the interop specs are skipped otherwise). */
export const slixmppAvailable = existsSync(PYTHON) && existsSync("/usr/lib/python3/dist-packages/slixmpp");

export const WAIT_MS = 8000;

export interface SlixEvent {
  event?: string;
  reply?: number;
  ok?: boolean;
  error?: { condition: string; type?: string; text?: string } | null;
  [key: string]: unknown;
}

export interface SlixRosterItem {
  subscription: "none" | "to" | "from" | "both";
  pending_out: boolean;
  name: string;
}

export interface SlixOptions {
  directTls?: boolean;
  /** SASL mechanisms slixmpp may choose from (its feature_mechanisms use_mechs); all when absent. */
  mechanisms?: string[];
  /** false: never claim channel-binding support (gs2 flag "n" instead of "y"). */
  channelBinding?: boolean;
  password?: string;
}

/** slixmpp reads the CA from a file: the test server's certificate, written to a fresh temp dir. */
export function writeCaFile(t: TestServer): string {
  const file = join(mkdtempSync(join(tmpdir(), "parley-interop-")), "ca.pem");
  writeFileSync(file, t.ca);
  return file;
}

const running = new Set<ChildProcessWithoutNullStreams>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export class Slix {
  readonly events: SlixEvent[] = [];
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];
  private nextId = 1;
  private stderr = "";

  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    running.add(proc);
    let buffered = "";
    proc.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) this.events.push(JSON.parse(line) as SlixEvent);
      }
      this.wake();
    });
    proc.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString("utf8")));
    this.exited = new Promise((resolve) =>
      proc.on("close", (code) => {
        running.delete(proc);
        this.wake();
        resolve(code);
      }),
    );
  }

  /** Starts slixmpp for `jid` (password "pass-<local>" unless given) against `t`. */
  static start(t: TestServer, caFile: string, jid: string, opts: SlixOptions = {}): Slix {
    const local = jid.split("@")[0];
    const options = {
      host: t.host,
      port: opts.directTls ? t.directTlsPort : t.port,
      jid,
      password: opts.password ?? `pass-${local}`,
      cafile: caFile,
      direct_tls: opts.directTls ?? false,
      mechanisms: opts.mechanisms ?? null,
      channel_binding: opts.channelBinding ?? true,
    };
    const proc = spawn(PYTHON, [SCRIPT, JSON.stringify(options)], { stdio: ["pipe", "pipe", "pipe"] });
    return new Slix(proc);
  }

  /** Starts slixmpp and waits for session_start; throws with what slixmpp said otherwise. */
  static async online(t: TestServer, caFile: string, jid: string, opts: SlixOptions = {}): Promise<Slix> {
    const s = Slix.start(t, caFile, jid, opts);
    await s.waitFor((e) => e.event === "session_start", "session_start");
    return s;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The number of events so far: pass it as `after` to wait only for later ones. */
  mark(): number {
    return this.events.length;
  }

  /** The first event (at index `after` or later) that satisfies `match`, waiting up to WAIT_MS. */
  waitFor(match: (e: SlixEvent) => boolean, what: string, after = 0, timeoutMs = WAIT_MS): Promise<SlixEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`slixmpp: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const check = () => {
        const found = this.events.slice(after).find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else if (!this.alive && this.proc.stdout.readableEnded) {
          clearTimeout(timer);
          reject(new Error(`slixmpp exited before ${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr.slice(-2000)}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Every event from `after` on that satisfies `match`. */
  seen(match: (e: SlixEvent) => boolean, after = 0): SlixEvent[] {
    return this.events.slice(after).filter(match);
  }

  /** Runs a command in the driver and resolves with its reply (ok or not). */
  async call(cmd: string, args: Record<string, unknown> = {}): Promise<SlixEvent> {
    const id = this.nextId++;
    this.proc.stdin.write(JSON.stringify({ id, cmd, ...args }) + "\n");
    return this.waitFor((e) => e.reply === id, `reply to ${cmd}`);
  }

  /** Runs a command that must succeed. */
  async ok(cmd: string, args: Record<string, unknown> = {}): Promise<SlixEvent> {
    const r = await this.call(cmd, args);
    if (!r.ok) throw new Error(`slixmpp ${cmd} failed: ${JSON.stringify(r.error)}`);
    return r;
  }

  /** slixmpp's view of one roster item, from its own bookkeeping. */
  async rosterItem(jid: string): Promise<SlixRosterItem | undefined> {
    const r = await this.ok("roster_state");
    return (r.roster as Record<string, SlixRosterItem>)[jid];
  }

  /** Waits for the process to end (killing it after `timeoutMs`) and returns its exit code. */
  async stop(timeoutMs = 5000): Promise<number | null> {
    if (this.alive) this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  get diagnostics(): string {
    return `events: ${JSON.stringify(this.events)}\nstderr: ${this.stderr.slice(-3000)}`;
  }
}
