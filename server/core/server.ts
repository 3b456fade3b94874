// The daemon's core: configuration, storage, hooks, router, sessions and modules put together
// (shared/DESIGN.md "The flow of a stanza"). Transports (c2s, later websocket, bosh, s2s) feed
// stanzas in through `router.route()` and are started and stopped from here.
import { Element } from "../../protocol/xml/element.ts";
import { StanzaError, errorReply } from "../../protocol/errors.ts";
import { Hooks, type HookHandler } from "./hooks.ts";
import { Router, type ComponentHandler, type IqEvent, type StanzaEvent, type Target } from "./router.ts";
import { LocalSessionRegistry, type ClientSession } from "./sessions.ts";
import { moduleStore, runIqHandler, type DiscoInfo, type IqHandler, type ModuleApi, type ModuleDefinition } from "./module.ts";
import type { Config } from "./config.ts";
import type { Storage } from "./storage/index.ts";
import type { Logger } from "./log.ts";

export interface Transport {
  readonly name: string;
  /** Ports actually listened on (useful with port 0 in tests). */
  readonly ports: number[];
  stop(): Promise<void>;
}

export class Server {
  readonly hooks = new Hooks();
  readonly sessions = new LocalSessionRegistry();
  readonly router: Router;
  readonly hosts: readonly string[];
  /** What disco#info shows for the server and for accounts, built from the loaded modules. */
  readonly disco: { host: DiscoInfo; account: DiscoInfo } = {
    host: { features: new Set(), identities: [] },
    account: { features: new Set(), identities: [] },
  };
  readonly loaded: ModuleDefinition[] = [];
  readonly startedAt = Date.now();
  private readonly hostSet: Set<string>;
  readonly components = new Map<string, ComponentHandler>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly stopHandlers: Array<() => void | Promise<void>> = [];
  readonly transports: Transport[] = [];
  private stopping: Promise<void> | null = null;

  constructor(
    readonly config: Config,
    readonly storage: Storage,
    readonly log: Logger,
  ) {
    this.hosts = config.domains;
    this.hostSet = new Set(config.domains);
    this.router = new Router({
      hooks: this.hooks,
      sessions: this.sessions,
      log: log.child({ part: "router" }),
      isLocalDomain: (d) => this.hostSet.has(d) || this.components.has(d),
      componentFor: (d) => this.components.get(d),
    });
  }

  isLocalHost(domain: string): boolean {
    return this.hostSet.has(domain);
  }

  /**
   * Loads modules in dependency order; disabled ones (config) are skipped and not advertised,
   * and so is a module whose dependency is not loaded (one log line says why).
   */
  async loadModules(defs: ModuleDefinition[]): Promise<void> {
    const disabled = new Set(this.config.modules.disabled);
    const byName = new Map(defs.map((d) => [d.name, d]));
    for (const name of disabled) {
      if (!byName.has(name)) throw new Error(`modules.disabled: no module named "${name}"`);
    }
    const done = new Set<string>();
    /** Modules left out because of a dependency, with the dependency that is missing. */
    const skipped = new Map<string, string>();
    const visit = async (def: ModuleDefinition, path: string[]): Promise<boolean> => {
      if (done.has(def.name)) return true;
      if (disabled.has(def.name) || skipped.has(def.name)) return false;
      if (path.includes(def.name)) throw new Error(`module dependency cycle: ${[...path, def.name].join(" -> ")}`);
      for (const dep of def.depends ?? []) {
        const d = byName.get(dep);
        if (!d) throw new Error(`module ${def.name} depends on unknown module ${dep}`);
        if (!(await visit(d, [...path, def.name]))) {
          skipped.set(def.name, dep);
          const why = disabled.has(dep) ? "modules.disabled turns it off" : `it is not loaded either (it needs ${skipped.get(dep)})`;
          this.log.warn({ module: def.name, needs: dep }, `module ${def.name} not loaded: it needs ${dep}, and ${why}`);
          return false;
        }
      }
      await def.setup(this.api(def));
      done.add(def.name);
      this.loaded.push(def);
      return true;
    };
    for (const def of defs) await visit(def, []);
  }

  private api(def: ModuleDefinition): ModuleApi {
    const log = this.log.child({ module: def.name });
    const server = this;
    return {
      name: def.name,
      config: this.config.modules.settings[def.name] ?? {},
      serverConfig: this.config,
      log,
      storage: this.storage,
      sessions: this.sessions,
      hosts: this.hosts,
      isLocalHost: (d) => this.isLocalHost(d),
      hook: <P>(event: string, fn: HookHandler<P>, priority?: number) => {
        this.hooks.on(event, fn, priority);
      },
      fire: (event, payload) => this.hooks.fire(event, payload),
      onIq(type, ns, name, fn: IqHandler, opts = {}) {
        for (const target of opts.targets ?? ["host"]) {
          server.hooks.on<IqEvent>(`iq-${type}/${target}/${ns}:${name}`, async (ev) => {
            const reply = await runIqHandler(fn, ev, log);
            if (!reply) return false;
            server.reply(ev, reply);
            return true;
          }, opts.priority);
        }
      },
      disco: this.disco,
      addFeature: (ns, on = "host") => {
        this.disco[on].features.add(ns);
      },
      addIdentity: (identity, on = "host") => {
        this.disco[on].identities.push(identity);
      },
      addComponent: (domain, handler) => {
        if (this.hostSet.has(domain) || this.components.has(domain)) throw new Error(`${domain} is already served`);
        this.components.set(domain, handler);
      },
      send: (stanza) => this.router.route(stanza, null),
      route: (stanza, origin) => this.router.route(stanza, origin),
      request: (iq) => this.router.request(iq),
      bounce: (ev, err) => {
        const reply = errorReply(ev.stanza, err);
        if (reply) this.reply(ev, reply);
      },
      store: (name = def.name) => moduleStore(this.storage.kv, name),
      timer: (ms, fn, opts = {}) => {
        const run = () => {
          if (!opts.repeat) this.timers.delete(t);
          try {
            fn();
          } catch (err) {
            log.error({ err }, "timer failed");
          }
        };
        const t = opts.repeat ? setInterval(run, ms) : setTimeout(run, ms);
        t.unref();
        this.timers.add(t);
        return {
          cancel: () => {
            clearTimeout(t);
            this.timers.delete(t);
          },
        };
      },
      onStop: (fn) => {
        this.stopHandlers.push(fn);
      },
    };
  }

  /** Sends a reply to the stanza of an event: straight to the client session it came from. */
  reply(ev: StanzaEvent, reply: Element): void {
    if (ev.origin) {
      if (ev.origin.jid) reply.attrs.to = ev.origin.jid.toString();
      ev.origin.send(reply);
    } else {
      void this.router.route(reply, null);
    }
  }

  addTransport(t: Transport): void {
    this.transports.push(t);
  }

  /** Routes a stanza that a client session sent. */
  routeFromClient(stanza: Element, session: ClientSession): Promise<void> {
    return this.router.route(stanza, session);
  }

  /** Stops politely: every stream gets <system-shutdown/>, modules flush, storage closes. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const t of this.transports) {
        try {
          await t.stop();
        } catch (err) {
          this.log.error({ err, transport: t.name }, "transport stop failed");
        }
      }
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      this.router.close();
      for (const fn of this.stopHandlers.reverse()) {
        try {
          await fn();
        } catch (err) {
          this.log.error({ err }, "stop handler failed");
        }
      }
      await this.storage.close();
    })();
    return this.stopping;
  }
}

export type { Target, StanzaError, DiscoInfo };
