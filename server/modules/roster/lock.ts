// One writer at a time per account, so that RFC 6121 §2.6.3 holds: roster pushes go out in the
// order of the modifications, and a roster set cannot overwrite a subscription change made by a
// presence stanza that arrived on another connection at the same moment.

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier call with the same key has finished. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // The last one out leaves no entry behind, so the map only holds accounts in use.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
