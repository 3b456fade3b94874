// XML namespaces used by Parley, as registered by RFC 6120 (XMPP Core), RFC 6121 (XMPP IM),
// RFC 7395 (XMPP over WebSocket) and the XMPP Registrar for each XEP named below.
// One table, so that a typo in a namespace is a compile error instead of a silent mismatch.
// Namespaces that end in "#something" are distinct namespaces (not fragments of the base one).
// Some XEPs the server implements define no namespace of their own: XEP-0368 (direct TLS,
// DNS only), XEP-0163 (PEP, reuses pubsub), XEP-0160 (offline storage), XEP-0156 (discovery
// of alternative connection methods, DNS/HTTP only).

export const NS = {
  // RFC 6120: streams, TLS, SASL, binding
  client: "jabber:client",
  server: "jabber:server",
  stream: "http://etherx.jabber.org/streams",
  streams: "urn:ietf:params:xml:ns:xmpp-streams",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  tls: "urn:ietf:params:xml:ns:xmpp-tls",
  sasl: "urn:ietf:params:xml:ns:xmpp-sasl",
  bind: "urn:ietf:params:xml:ns:xmpp-bind",
  /** RFC 3921 session establishment: obsolete, still advertised as optional for old clients. */
  session: "urn:ietf:params:xml:ns:xmpp-session",
  /** The predefined xml: prefix's namespace (xml:lang). */
  xml: "http://www.w3.org/XML/1998/namespace",

  // Transports
  /** RFC 7395 XMPP over WebSocket framing (<open/>, <close/>). */
  framing: "urn:ietf:params:xml:ns:xmpp-framing",
  /** XEP-0124 BOSH body wrapper. */
  httpbind: "http://jabber.org/protocol/httpbind",
  /** XEP-0206 XMPP over BOSH attributes. */
  xbosh: "urn:xmpp:xbosh",
  /** XEP-0114 external components. */
  componentAccept: "jabber:component:accept",

  // Server-to-server
  /** XEP-0220 server dialback. */
  dialback: "jabber:server:dialback",
  dialbackFeature: "urn:xmpp:features:dialback",
  /** XEP-0288 bidirectional s2s. */
  bidi: "urn:xmpp:bidi",
  bidiFeature: "urn:xmpp:features:bidi",

  // Stream features and session-level extensions
  /** XEP-0198 stream management. */
  sm: "urn:xmpp:sm:3",
  /** XEP-0352 client state indication. */
  csi: "urn:xmpp:csi:0",
  /** XEP-0440 SASL channel-binding type capability. */
  saslChannelBinding: "urn:xmpp:sasl-cb:0",
  /** XEP-0388 SASL2, XEP-0386 Bind 2, XEP-0484 FAST. */
  sasl2: "urn:xmpp:sasl:2",
  bind2: "urn:xmpp:bind:0",
  fast: "urn:xmpp:fast:0",
  /** RFC 6121 §2.6 roster versioning and §3.4 pre-approval stream features. */
  rosterVersioning: "urn:xmpp:features:rosterver",
  preApproval: "urn:xmpp:features:pre-approval",
  /** XEP-0077 in-band registration stream feature. */
  registerFeature: "http://jabber.org/features/iq-register",

  // RFC 6121 and core IQ services
  roster: "jabber:iq:roster",
  /** XEP-0077 in-band registration. */
  register: "jabber:iq:register",
  /** XEP-0030 service discovery. */
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  /** XEP-0115 entity capabilities. */
  caps: "http://jabber.org/protocol/caps",
  /** XEP-0199 XMPP ping. */
  ping: "urn:xmpp:ping",
  /** XEP-0353 Jingle Message Initiation (call invitations). */
  jingleMessage: "urn:xmpp:jingle-message:0",
  /** XEP-0092 software version. */
  version: "jabber:iq:version",
  /** XEP-0202 entity time. */
  time: "urn:xmpp:time",
  /** XEP-0012 last activity. */
  last: "jabber:iq:last",
  /** XEP-0319 last user interaction in presence. */
  idle: "urn:xmpp:idle:1",
  /** XEP-0049 private XML storage. */
  privateStorage: "jabber:iq:private",
  /** XEP-0050 ad-hoc commands and XEP-0133 service administration. */
  commands: "http://jabber.org/protocol/commands",
  admin: "http://jabber.org/protocol/admin",
  /** XEP-0215 external service discovery (STUN/TURN). */
  externalServices: "urn:xmpp:extdisco:2",
  /** XEP-0191 blocking command, and its application-specific error. */
  blocking: "urn:xmpp:blocking",
  blockingErrors: "urn:xmpp:blocking:errors",
  /** XEP-0377 spam reporting (inside a XEP-0191 block). */
  reporting: "urn:xmpp:reporting:1",
  /** XEP-0013 flexible offline message retrieval. */
  offline: "http://jabber.org/protocol/offline",

  // Profiles and avatars
  /** XEP-0054 vcard-temp and XEP-0153 vCard-based avatars. */
  vcard: "vcard-temp",
  vcardUpdate: "vcard-temp:x:update",
  /** XEP-0292 vCard4 over XMPP. */
  vcard4: "urn:ietf:params:xml:ns:vcard-4.0",
  /** XEP-0084 user avatar. */
  avatarData: "urn:xmpp:avatar:data",
  avatarMetadata: "urn:xmpp:avatar:metadata",
  /** XEP-0172 user nickname. */
  nick: "http://jabber.org/protocol/nick",

  // Shared building blocks
  /** XEP-0004 data forms. */
  dataForms: "jabber:x:data",
  /** XEP-0059 result set management. */
  rsm: "http://jabber.org/protocol/rsm",
  /** XEP-0203 delayed delivery. */
  delay: "urn:xmpp:delay",
  /** XEP-0297 stanza forwarding. */
  forward: "urn:xmpp:forward:0",
  /** XEP-0033 extended stanza addressing. */
  address: "http://jabber.org/protocol/address",

  // Messaging
  /** XEP-0280 message carbons. */
  carbons: "urn:xmpp:carbons:2",
  /** XEP-0313 message archive management. */
  mam: "urn:xmpp:mam:2",
  mamExtended: "urn:xmpp:mam:2#extended",
  /** XEP-0359 unique and stable stanza IDs (stanza-id and origin-id). */
  sid: "urn:xmpp:sid:0",
  /** XEP-0334 message processing hints. */
  hints: "urn:xmpp:hints",
  /** XEP-0184 delivery receipts. */
  receipts: "urn:xmpp:receipts",
  /** XEP-0333 chat markers. */
  chatMarkers: "urn:xmpp:chat-markers:0",
  /** XEP-0085 chat state notifications. */
  chatStates: "http://jabber.org/protocol/chatstates",
  /** XEP-0308 last message correction. */
  correction: "urn:xmpp:message-correct:0",
  /** XEP-0424 message retraction. */
  retraction: "urn:xmpp:message-retract:1",
  /** XEP-0444 reactions. */
  reactions: "urn:xmpp:reactions:0",
  /** XEP-0461 replies and XEP-0428 fallback indication. */
  reply: "urn:xmpp:reply:0",
  fallback: "urn:xmpp:fallback:0",
  /** XEP-0066 out-of-band data (how clients attach uploaded files). */
  oob: "jabber:x:oob",
  /** XEP-0490 message displayed synchronization. */
  displayedSync: "urn:xmpp:mds:displayed:0",

  // Multi-user chat (XEP-0045) and friends
  muc: "http://jabber.org/protocol/muc",
  mucUser: "http://jabber.org/protocol/muc#user",
  mucAdmin: "http://jabber.org/protocol/muc#admin",
  mucOwner: "http://jabber.org/protocol/muc#owner",
  /** XEP-0045 FORM_TYPE values and the unique room name request. */
  mucRoomConfig: "http://jabber.org/protocol/muc#roomconfig",
  mucRoomInfo: "http://jabber.org/protocol/muc#roominfo",
  mucRequest: "http://jabber.org/protocol/muc#request",
  mucRegister: "http://jabber.org/protocol/muc#register",
  mucUnique: "http://jabber.org/protocol/muc#unique",
  /** XEP-0249 direct MUC invitations. */
  conferenceInvite: "jabber:x:conference",
  /** XEP-0421 occupant identifiers. */
  occupantId: "urn:xmpp:occupant-id:0",

  // Publish-subscribe (XEP-0060) and PEP (XEP-0163)
  pubsub: "http://jabber.org/protocol/pubsub",
  pubsubEvent: "http://jabber.org/protocol/pubsub#event",
  pubsubOwner: "http://jabber.org/protocol/pubsub#owner",
  pubsubErrors: "http://jabber.org/protocol/pubsub#errors",
  /** FORM_TYPE values of the pubsub data forms. */
  pubsubPublishOptions: "http://jabber.org/protocol/pubsub#publish-options",
  pubsubNodeConfig: "http://jabber.org/protocol/pubsub#node_config",
  pubsubSubscribeOptions: "http://jabber.org/protocol/pubsub#subscribe_options",
  pubsubMetaData: "http://jabber.org/protocol/pubsub#meta-data",

  // Mobile and storage
  /** XEP-0357 push notifications, and its summary FORM_TYPE. */
  push: "urn:xmpp:push:0",
  pushSummary: "urn:xmpp:push:summary",
  /** XEP-0363 HTTP file upload. */
  upload: "urn:xmpp:http:upload:0",
  /** XEP-0402 PEP native bookmarks, its XEP-0411 compatibility feature, and XEP-0048 legacy. */
  bookmarks: "urn:xmpp:bookmarks:1",
  bookmarksCompat: "urn:xmpp:bookmarks:1#compat",
  bookmarksLegacy: "storage:bookmarks",

  // End-to-end encryption (the server only stores and forwards these)
  /** XEP-0384 OMEMO as currently specified. */
  omemo: "urn:xmpp:omemo:2",
  /** XEP-0384 0.3 ("siacs" OMEMO), what most deployed clients still speak. */
  omemoLegacy: "eu.siacs.conversations.axolotl",
  /** XEP-0380 explicit message encryption. */
  eme: "urn:xmpp:eme:0",
} as const;

export type NamespaceName = keyof typeof NS;
export type Namespace = (typeof NS)[NamespaceName];
