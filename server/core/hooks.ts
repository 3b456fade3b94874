// Events with priorities, in the manner of Prosody's event system: a handler that returns true
// has handled the event and the ones after it do not run. Higher priority runs first; equal
// priorities run in the order they were added. Handlers may be async; they run one at a time.
export type HookResult = boolean | void | undefined;
export type HookHandler<P = unknown> = (payload: P) => HookResult | Promise<HookResult>;

interface Entry {
  fn: HookHandler<never>;
  priority: number;
  seq: number;
}

export class Hooks {
  private readonly handlers = new Map<string, Entry[]>();
  private seq = 0;

  /** Adds a handler; the returned function removes it. */
  on<P>(event: string, fn: HookHandler<P>, priority = 0): () => void {
    const list = this.handlers.get(event) ?? [];
    const entry: Entry = { fn: fn as HookHandler<never>, priority, seq: this.seq++ };
    list.push(entry);
    list.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.handlers.set(event, list);
    return () => {
      const cur = this.handlers.get(event);
      if (!cur) return;
      const i = cur.indexOf(entry);
      if (i >= 0) cur.splice(i, 1);
      if (cur.length === 0) this.handlers.delete(event);
    };
  }

  has(event: string): boolean {
    return this.handlers.has(event);
  }

  /** Runs the handlers in order; true when one of them handled the event. */
  async fire<P>(event: string, payload: P): Promise<boolean> {
    const list = this.handlers.get(event);
    if (!list) return false;
    // A copy: handlers may add or remove handlers while the event runs.
    for (const entry of list.slice()) {
      let r = (entry.fn as HookHandler<P>)(payload);
      if (r !== undefined && typeof (r as Promise<HookResult>).then === "function") r = await r;
      if (r === true) return true;
    }
    return false;
  }
}
