// Reading a password for `parley adduser` and `parley passwd` (DESIGN.md "Configuration and
// operations"). Never from argv: arguments show up in `ps` and in shell history. On a terminal
// the prompt goes to stderr and the typed characters are not echoed (raw mode, as getpass(3)
// does); otherwise the first line of stdin is the password, so scripts can pipe it in.
import { CliError } from "./errors.ts";

/** The most a password may be, in characters; a longer line is a mistake (a pasted file). */
const MAX_PASSWORD_LENGTH = 1024;
/** The most read from a non-terminal stdin. */
const MAX_STDIN_BYTES = 64 * 1024;

/** What is needed of process.stdin. */
export interface PasswordInput {
  readonly isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  setEncoding(encoding: BufferEncoding): unknown;
  on(event: "data", listener: (chunk: string | Buffer) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeAllListeners(event?: string): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface PasswordOutput {
  write(text: string): unknown;
}

export interface ReadPasswordOptions {
  input: PasswordInput;
  /** Where the prompts go (stderr, so stdout stays clean for scripts). */
  output: PasswordOutput;
  prompt: string;
  /** On a terminal, ask a second time and insist both match (a typo would lock the user out). */
  confirm: boolean;
}

export async function readPassword(opts: ReadPasswordOptions): Promise<string> {
  if (!opts.input.isTTY) return firstLine(opts.input);
  const first = await promptHidden(opts.input, opts.output, opts.prompt);
  if (first === "") throw new CliError("the password is empty");
  if (opts.confirm) {
    const second = await promptHidden(opts.input, opts.output, "Repeat the password: ");
    if (second !== first) throw new CliError("the passwords do not match");
  }
  return first;
}

/** The first line of a piped stdin, without its line ending. */
function firstLine(input: PasswordInput): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      input.removeAllListeners("data");
      input.pause();
      if (err) return reject(err);
      const text = Buffer.concat(chunks).toString("utf8");
      const line = text.split("\n")[0].replace(/\r$/, "");
      if (line === "") return reject(new CliError("no password on standard input (give it as the first line)"));
      if (line.length > MAX_PASSWORD_LENGTH) return reject(new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`));
      resolve(line);
    };
    input.on("data", (chunk) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      chunks.push(bytes);
      size += bytes.length;
      // The first line is all we need; stop reading once it is complete.
      if (bytes.includes(0x0a) || size > MAX_STDIN_BYTES) finish(null);
    });
    input.on("end", () => finish(null));
    input.on("error", (err) => finish(new CliError(`cannot read standard input: ${err.message}`)));
    input.resume();
  });
}

/** Reads one line from a terminal in raw mode, echoing nothing. */
export function promptHidden(input: PasswordInput, output: PasswordOutput, prompt: string): Promise<string> {
  output.write(prompt);
  input.setRawMode?.(true);
  input.setEncoding("utf8");
  let value = "";
  return new Promise((resolve, reject) => {
    const done = (outcome: { value: string } | { error: CliError }) => {
      input.removeAllListeners("data");
      input.removeAllListeners("end");
      input.setRawMode?.(false);
      input.pause();
      output.write("\n");
      if ("error" in outcome) reject(outcome.error);
      else resolve(outcome.value);
    };
    input.on("data", (chunk) => {
      for (const ch of typeof chunk === "string" ? chunk : chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done({ value });
        if (ch === "\u0003") return done({ error: new CliError("cancelled", 130) }); // Ctrl-C
        if (ch === "\u0004") return value === "" ? done({ error: new CliError("cancelled") }) : done({ value }); // Ctrl-D
        if (ch === "\u007f" || ch === "\b") value = Array.from(value).slice(0, -1).join("");
        else if (ch === "\u0015") value = ""; // Ctrl-U
        else if (ch >= " ") value += ch;
        if (value.length > MAX_PASSWORD_LENGTH) return done({ error: new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`) });
      }
    });
    input.on("end", () => done({ error: new CliError("cancelled") }));
    input.resume();
  });
}
