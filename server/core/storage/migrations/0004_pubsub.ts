// Migration 0004_pubsub (issue 8): XEP-0060 1.26.0 Publish-Subscribe nodes, items, affiliations
// and subscriptions, for PEP (XEP-0163 1.2, one service per account) and the generic service.
// A service is named like every other key here: (host, username) is the account for PEP, and
// (component domain, "") for a pubsub.<domain> service. Tables typed in server/modules/pep/store.ts.
import type { Kysely, Migration } from "kysely";
import type { Dialect } from "../schema.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

const SERVICE_NODE = ["host", "username", "node"] as const;

export function migration(_dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable("pubsub_nodes")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        // JSON text: the node configuration (protocol/pubsub.ts NodeConfig).
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("pubsub_nodes_pk", [...SERVICE_NODE])
        .execute();

      // `seq` orders a node's items by publication (a republished id moves to the end); the
      // service hands them out under its per-service lock, so they need no sequence object.
      await db.schema
        .createTable("pubsub_items")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("id", "text", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("publisher", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("published_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("pubsub_items_pk", [...SERVICE_NODE, "id"])
        .execute();
      await db.schema.createIndex("pubsub_items_by_seq").on("pubsub_items").columns([...SERVICE_NODE, "seq"]).execute();

      await db.schema
        .createTable("pubsub_affiliations")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("jid", "text", (c) => c.notNull())
        .addColumn("affiliation", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("pubsub_affiliations_pk", [...SERVICE_NODE, "jid"])
        .execute();

      await db.schema
        .createTable("pubsub_subscriptions")
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("jid", "text", (c) => c.notNull())
        .addColumn("subid", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("pubsub_subscriptions_pk", [...SERVICE_NODE, "jid"])
        .execute();
      // "Which nodes is this JID subscribed to" (XEP-0060 §5.6) across services.
      await db.schema.createIndex("pubsub_subscriptions_by_jid").on("pubsub_subscriptions").columns(["jid"]).execute();
    },

    async down(db: AnyDb) {
      for (const table of ["pubsub_subscriptions", "pubsub_affiliations", "pubsub_items", "pubsub_nodes"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
