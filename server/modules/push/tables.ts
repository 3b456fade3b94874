// Kysely types of migration 0005_push's tables (used with storage.db.withTables<PushTables>()).
export type PushRegistrationsTable = {
  host: string;
  username: string;
  /** The app server's JID (XEP-0357 §5 'jid'). */
  service: string;
  node: string;
  /** The resource that enabled it: the device whose state decides whether to push. */
  resource: string;
  /** JSON text of the publish-options DataForm, or null. */
  options: string | null;
  created_at: number;
};

export type PushDevicesTable = {
  /** The app server component's domain. */
  service: string;
  node: string;
  /** The bare JID that registered the device. */
  owner: string;
  kind: "apns" | "fcm" | "web";
  /** APNs device token (hex), FCM registration token, or a Web Push subscription as JSON. */
  token: string;
  /** APNs topic (bundle id) for this device, when not the configured one. */
  topic: string | null;
  secret: string;
  created_at: number;
};

export type PushJobsTable = {
  id: string;
  queue: string;
  /** JSON text. */
  payload: string;
  attempts: number;
  next_at: number;
  state: "queued" | "dead";
  last_error: string | null;
  created_at: number;
};

export type PushTables = {
  push_registrations: PushRegistrationsTable;
  push_devices: PushDevicesTable;
  push_jobs: PushJobsTable;
};
