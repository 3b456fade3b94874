// How `parley` commands fail: a CliError is a message for the operator (no stack trace) and the
// process exit status. 1 is a failure, 2 a command line that could not be understood (as
// getopt-style tools do), 130 an interrupted prompt (128 + SIGINT, as shells report it).
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}
