// A XEP-0357 (Push Notifications 0.4.1) app server as an internal component, push.<domain>:
// it takes the publishes of any user's server (Parley's own push module, or a federated server
// over s2s), finds the device behind the node, and delivers through APNs, FCM or Web Push as a
// durable job (jobs.ts: the SQL outbox, or BullMQ when [redis] url is set).
//
// Devices register with an IQ in Parley's own namespace:
//   <iq type='set' to='push.example.org'>
//     <register xmlns='urn:xmpp:parley:push:0' type='apns|fcm|web' token='...' [topic='bundle id']/>
//   </iq>
// answered with <registered xmlns='urn:xmpp:parley:push:0' jid='push.example.org' node='…'
// secret='…'/>: the client then sends its server XEP-0357 <enable jid='push.example.org'
// node='…'/> with the publish-options field `secret`. For Web Push the token is the browser's
// PushSubscription as JSON. <unregister xmlns='urn:xmpp:parley:push:0' node='…'/> removes one.
// Only accounts of this server's hosts may register (`register_remote = true`: accounts of any
// server, over s2s, as a vendor's app server does); publishes are accepted from anywhere
// (`allow_remote = false` limits them to local hosts) but need the node's secret.
//
// Answers to publishes (XEP-0357 §7, and the errors the user's server acts on):
// unknown node: <item-not-found/> (the device is gone, e.g. its token was invalidated on APNs
// 410 / FCM UNREGISTERED / Web Push 410); wrong or missing secret: <not-authorized/>.
//
// Settings, [modules.push_appserver]: enabled (default false), domain (default push.<first host>), allow_remote, register_remote,
// apns_key_file, apns_key_id, apns_team_id, apns_topic, apns_url, apns_ca_file;
// fcm_service_account_file, fcm_url, fcm_token_url, fcm_ca_file; vapid_public_key,
// vapid_private_key, vapid_subject, web_push_ca_file; max_attempts, backoff_ms, poll_ms,
// redis_prefix, job_lock_ms (BullMQ: how long a worker's claim on a delivery lasts unless
// renewed, default 30000; a delivery claimed as Redis died runs after at most twice this).
// A service left unconfigured refuses registrations of its type.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Kysely } from "kysely";
import { xml, type Element } from "../../../protocol/xml/element.ts";
import { NS } from "../../../protocol/ns.ts";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { parsePublish, type PushSummary } from "../../../protocol/push.ts";
import { SettingsReader } from "../../core/config.ts";
import { defineModule, iqResult } from "../../core/module.ts";
import type { StanzaEvent } from "../../core/router.ts";
import type { PushDevicesTable, PushTables } from "../push/tables.ts";
import { BullQueue, SqlOutbox, type JobQueue, type RetryPolicy } from "./jobs.ts";
import { ApnsProvider, FcmProvider, WebPushProvider, type Provider, type ServiceAccount } from "./providers.ts";

export const APPSERVER_NS = "urn:xmpp:parley:push:0";
export const QUEUE_NAME = "push-deliveries";

export interface DeliveryJob {
  service: string;
  node: string;
  summary: PushSummary;
}

type Kind = PushDevicesTable["kind"];
const KINDS: readonly Kind[] = ["apns", "fcm", "web"];

/** The running app servers, by component domain (tests look at their queues). */
export const appServers = new Map<string, { queue: JobQueue<DeliveryJob> }>();

function readOptional(path: string): string | undefined {
  return path ? readFileSync(path, "utf8") : undefined;
}

export default defineModule({
  name: "push_appserver",
  // XEP-0357 is claimed once, by the push module; this is its other half.
  xeps: [],
  async setup(m) {
    const s = new SettingsReader(m.config, `modules.${m.name}`);
    const enabled = s.boolean("enabled", false);
    const domain = s.string("domain", `push.${m.hosts[0]}`);
    const allowRemote = s.boolean("allow_remote", true);
    // A vendor's app server (the app's users live on any server) registers devices of remote
    // accounts too; a server's own app server, by default, only its own users'.
    const registerRemote = s.boolean("register_remote", false);
    const apnsKeyFile = s.string("apns_key_file", "");
    const apnsKeyId = s.string("apns_key_id", "");
    const apnsTeamId = s.string("apns_team_id", "");
    const apnsTopic = s.string("apns_topic", "");
    const apnsUrl = s.string("apns_url", "https://api.push.apple.com");
    const apnsCaFile = s.string("apns_ca_file", "");
    const fcmAccountFile = s.string("fcm_service_account_file", "");
    const fcmUrl = s.string("fcm_url", "https://fcm.googleapis.com");
    const fcmTokenUrl = s.string("fcm_token_url", "");
    const fcmCaFile = s.string("fcm_ca_file", "");
    const vapidPublic = s.string("vapid_public_key", "");
    const vapidPrivate = s.string("vapid_private_key", "");
    const vapidSubject = s.string("vapid_subject", `mailto:admin@${m.hosts[0]}`);
    const webCaFile = s.string("web_push_ca_file", "");
    const policy: RetryPolicy = { maxAttempts: s.integer("max_attempts", 1, 100, 8), backoffMs: s.integer("backoff_ms", 1, 3_600_000, 2000) };
    const pollMs = s.integer("poll_ms", 10, 60_000, 1000);
    const redisPrefix = s.string("redis_prefix", "parley");
    const jobLockMs = s.integer("job_lock_ms", 1000, 600_000, 30_000);
    s.finish();
    // Optional: most servers use their users' apps' own app servers.
    if (!enabled) return;

    const providers = new Map<Kind, Provider>();
    if (apnsKeyFile) {
      providers.set("apns", new ApnsProvider({ key: readFileSync(apnsKeyFile, "utf8"), keyId: apnsKeyId, teamId: apnsTeamId, topic: apnsTopic, url: apnsUrl, ca: readOptional(apnsCaFile) }));
    }
    if (fcmAccountFile) {
      const account = JSON.parse(readFileSync(fcmAccountFile, "utf8")) as ServiceAccount;
      providers.set("fcm", new FcmProvider({ account, url: fcmUrl, tokenUrl: fcmTokenUrl || undefined, ca: readOptional(fcmCaFile) }));
    }
    if (vapidPublic && vapidPrivate) {
      providers.set("web", new WebPushProvider({ publicKey: vapidPublic, privateKey: vapidPrivate, subject: vapidSubject, ca: readOptional(webCaFile) }));
    }

    const db = m.storage.db.withTables<PushTables>() as unknown as Kysely<PushTables>;
    const redisUrl = m.serverConfig.redis?.url;
    const queue: JobQueue<DeliveryJob> = redisUrl
      ? new BullQueue<DeliveryJob>({ url: redisUrl, prefix: redisPrefix, queue: QUEUE_NAME, policy, lockMs: jobLockMs })
      : new SqlOutbox<DeliveryJob>(m.storage, `${QUEUE_NAME}:${domain}`, policy, pollMs);
    appServers.set(domain, { queue });

    const device = (node: string) => db.selectFrom("push_devices").selectAll().where("service", "=", domain).where("node", "=", node).executeTakeFirst();

    queue.start(async (job) => {
      const row = await device(job.node);
      // Unregistered or invalidated since the publish: nothing to deliver, nothing to retry.
      if (!row) return;
      const provider = providers.get(row.kind);
      if (!provider) throw new Error(`${row.kind} is not configured`);
      const result = await provider.send({ token: row.token, topic: row.topic, summary: job.summary });
      if (result === "invalid-token") {
        m.log.info({ node: row.node, kind: row.kind }, "push token invalidated by the service: device removed");
        await db.deleteFrom("push_devices").where("service", "=", domain).where("node", "=", row.node).execute();
      }
    });

    m.onStop(async () => {
      appServers.delete(domain);
      await queue.close();
      for (const p of providers.values()) await p.close();
    });

    const reply = (el: Element | null) => {
      if (el) void m.send(el);
    };

    async function register(ev: StanzaEvent, payload: Element): Promise<Element> {
      if (ev.from.local === "") throw new StanzaError("forbidden", "only user accounts register devices");
      if (!registerRemote && !m.isLocalHost(ev.from.domain)) throw new StanzaError("forbidden", "only accounts of this server register devices");
      const kind = payload.attrs.type as Kind;
      if (!KINDS.includes(kind)) throw new StanzaError("bad-request", "type must be apns, fcm or web");
      if (!providers.has(kind)) throw new StanzaError("feature-not-implemented", `${kind} is not configured on this app server`);
      const token = payload.attrs.token ?? "";
      if (token === "" || token.length > 4096) throw new StanzaError("bad-request", "a token is needed");
      if (kind === "web") {
        try {
          const sub = JSON.parse(token) as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
          if (typeof sub.endpoint !== "string" || typeof sub.keys?.p256dh !== "string" || typeof sub.keys?.auth !== "string") throw new Error();
        } catch {
          throw new StanzaError("bad-request", "a Web Push token is a PushSubscription as JSON");
        }
      }
      const node = randomBytes(12).toString("base64url");
      const secret = randomBytes(18).toString("base64url");
      await db
        .insertInto("push_devices")
        .values({ service: domain, node, owner: ev.from.bare.toString(), kind, token, topic: payload.attrs.topic ?? null, secret, created_at: Date.now() })
        .execute();
      return xml("registered", { xmlns: APPSERVER_NS, jid: domain, node, secret });
    }

    async function unregister(ev: StanzaEvent, payload: Element): Promise<void> {
      const node = payload.attrs.node ?? "";
      const row = await device(node);
      if (!row || row.owner !== ev.from.bare.toString()) throw new StanzaError("item-not-found");
      await db.deleteFrom("push_devices").where("service", "=", domain).where("node", "=", node).execute();
    }

    async function publish(ev: StanzaEvent, payload: Element): Promise<void> {
      if (!allowRemote && !m.isLocalHost(ev.from.domain)) throw new StanzaError("forbidden", "this app server serves local accounts only");
      const p = parsePublish(payload);
      const row = await device(p.node);
      if (!row) throw new StanzaError("item-not-found", "no such push node");
      if (p.options.secret !== row.secret) throw new StanzaError("not-authorized", "wrong or missing secret");
      await queue.add({ service: domain, node: p.node, summary: p.summary });
    }

    function discoInfo(): Element {
      return xml(
        "query",
        { xmlns: NS.discoInfo },
        xml("identity", { category: "pubsub", type: "push", name: "Parley push notifications" }),
        xml("feature", { var: NS.discoInfo }),
        xml("feature", { var: NS.push }),
        xml("feature", { var: APPSERVER_NS }),
      );
    }

    m.addComponent(domain, async (ev) => {
      const { stanza } = ev;
      if (stanza.name !== "iq") return;
      const type = stanza.attrs.type;
      if (type !== "get" && type !== "set") return;
      const payload = stanza.getChildElements()[0];
      try {
        const ns = payload?.getNS();
        if (type === "get" && ns === NS.discoInfo && !payload!.attrs.node) return reply(iqResult(stanza, discoInfo()));
        if (type === "set" && ns === APPSERVER_NS && payload!.name === "register") return reply(iqResult(stanza, await register(ev, payload!)));
        if (type === "set" && ns === APPSERVER_NS && payload!.name === "unregister") {
          await unregister(ev, payload!);
          return reply(iqResult(stanza));
        }
        if (type === "set" && ns === NS.pubsub && payload!.getChild("publish")) {
          await publish(ev, payload!);
          return reply(iqResult(stanza));
        }
        reply(errorReply(stanza, new StanzaError("service-unavailable")));
      } catch (err) {
        if (err instanceof StanzaError) return reply(errorReply(stanza, err));
        m.log.error({ err }, "push app server failed");
        reply(errorReply(stanza, new StanzaError("internal-server-error")));
      }
    });
  },
});

