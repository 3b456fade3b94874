// XEP-0077: In-Band Registration 2.4. Before authentication: registration fields (legacy fields
// and a XEP-0004 form, §3.1 and §4) and account creation, only over TLS and only when
// `[registration] enabled`, limited per address (§3.1.1, §11). After authentication, for the
// account itself: <registered/> (§3.1), password change (§3.3) and cancellation (§3.2).
//
// Error choices, where the XEP leaves room:
// - a pre-authentication register IQ while registration is off: <service-unavailable/> (§3.1);
// - on a stream without TLS: <not-authorized/>, the XEP's condition for "the channel is not safe
//   enough" (§3.3), since a password would travel in clear;
// - a second account from the same stream: <not-acceptable/> (§3.1.1);
// - an address over its hourly allowance: <policy-violation type="wait"/> (RFC 6120 §8.3.3.12):
//   a local policy the client can satisfy by waiting, which §3.1.1's not-acceptable does not say;
// - a password change naming another account: <not-allowed/>; incomplete: <bad-request/> (§3.3).
//
// Cancelling an account fires `account/deleting` ({ jid }: the bare JID) before anything is
// deleted, so that the roster module can unsubscribe contacts (§3.2 says the server SHOULD).
import { defineModule, iqResult, type ModuleApi } from "../../core/module.ts";
import { NS } from "../../../protocol/ns.ts";
import { Element, xml, childElements } from "../../../protocol/xml/element.ts";
import { StanzaError, errorReply } from "../../../protocol/errors.ts";
import { buildForm, formType, getValue, parseForm } from "../../../protocol/forms.ts";
import { tryParseJid, type Jid } from "../../../protocol/jid.ts";
import { saslprep } from "../../../protocol/sasl/index.ts";
import { createAccount, normalizeUsername, setPassword } from "../../core/accounts.ts";
import { RegistrationLimiter } from "./limiter.ts";
import type { IqEvent } from "../../core/router.ts";
import type { PreauthIqEvent, StreamFeaturesEvent } from "../../transports/c2s.ts";

/** XEP-0077 §12.4 FORM_TYPEs. */
const FORM_REGISTER = NS.register;
const FORM_CHANGE_PASSWORD = `${NS.register}:changepassword`;

/** Payload of `account/deleting`. */
export interface AccountDeletingEvent {
  jid: Jid;
}

interface Submission {
  username: string | null;
  password: string | null;
}

/** The username and password a client sent: from the data form when there is one (§6), else the legacy fields. */
function readSubmission(query: Element, acceptedFormTypes: readonly string[]): Submission {
  const x = query.getChild("x", NS.dataForms);
  if (x) {
    const form = parseForm(x);
    if (form.type !== "submit") throw new StanzaError("bad-request", "send the form back with type 'submit'");
    const type = formType(form);
    if (type !== undefined && !acceptedFormTypes.includes(type)) throw new StanzaError("bad-request", `unexpected FORM_TYPE ${type}`);
    return { username: getValue(form, "username") ?? null, password: getValue(form, "password") ?? null };
  }
  return { username: query.getChildText("username"), password: query.getChildText("password") };
}

/**
 * The localpart a submitted username names on `host`: a plain username, or (as §3.2 and §3.3's
 * forms show) the bare JID; null when it is not a valid username or names another domain.
 */
function localpartOn(username: string, host: string): string | null {
  if (username.includes("@")) {
    const jid = tryParseJid(username);
    if (!jid || jid.local === "" || jid.resource !== "" || jid.domain !== host) return null;
    return jid.local;
  }
  return normalizeUsername(username);
}

/** RFC 5802 §2.2: a password SCRAM cannot normalise could never be used to log in. */
function usablePassword(password: string): boolean {
  try {
    return saslprep(password, { allowUnassigned: true }).length > 0;
  } catch {
    return false;
  }
}

function registrationFields(host: string): Element {
  const instructions = `Choose a username and password to register with ${host}.`;
  return xml(
    "query",
    { xmlns: NS.register },
    xml("instructions", {}, instructions),
    xml("username", {}),
    xml("password", {}),
    buildForm({
      type: "form",
      title: `Register with ${host}`,
      instructions: [instructions],
      fields: [
        { var: "FORM_TYPE", type: "hidden", values: [FORM_REGISTER] },
        { var: "username", type: "text-single", label: "Username", required: true, values: [] },
        { var: "password", type: "text-private", label: "Password", required: true, values: [] },
      ],
    }),
  );
}

/** The account a post-authentication request speaks for: a local client asking about itself or its own server. */
function ownAccount(ev: IqEvent): Jid | null {
  if (!ev.origin?.jid) return null;
  if (ev.target === "host" && ev.to.domain !== ev.from.domain) return null;
  return ev.from.bare;
}

const REGISTERED_MARK = "registered";

function setupPreauth(m: ModuleApi): void {
  const { enabled, perIpPerHour } = m.serverConfig.registration;
  const limiter = new RegistrationLimiter(perIpPerHour);

  m.hook<StreamFeaturesEvent>("c2s/features-preauth", ({ session, features }) => {
    if (enabled && session.secure) features.append(xml("register", { xmlns: NS.registerFeature }));
  });

  m.hook<PreauthIqEvent>("c2s/preauth-iq", async ({ session, stanza }) => {
    const query = stanza.getChild("query", NS.register);
    const type = stanza.attrs.type;
    if (!query || (type !== "get" && type !== "set")) return false;
    const answer = (reply: Element | null) => {
      if (reply) session.send(reply);
      return true;
    };
    const fail = (err: StanzaError) => answer(errorReply(stanza, err));

    const to = stanza.attrs.to === undefined ? null : tryParseJid(stanza.attrs.to);
    if (stanza.attrs.to !== undefined && !(to && to.local === "" && to.resource === "" && to.domain === session.host)) {
      return fail(new StanzaError("service-unavailable", "register with the server this stream is open to"));
    }
    if (!stanza.attrs.id) return fail(new StanzaError("bad-request", "an IQ needs an id"));
    if (childElements(stanza).length !== 1) return fail(new StanzaError("bad-request", "an IQ get or set carries exactly one payload"));
    if (!enabled) return fail(new StanzaError("service-unavailable", "in-band registration is disabled on this server"));
    if (!session.secure) return fail(new StanzaError("not-authorized", { type: "modify", text: "register after STARTTLS" }));

    if (type === "get") return answer(iqResult(stanza, registrationFields(session.host)));

    try {
      await register(session, query);
    } catch (err) {
      if (err instanceof StanzaError) return fail(err);
      throw err;
    }
    return answer(iqResult(stanza));
  });

  async function register(session: PreauthIqEvent["session"], query: Element): Promise<void> {
    // §3.2: cancelling needs an account; before authentication there is none to speak for.
    if (query.getChild("remove")) throw new StanzaError("unexpected-request", { type: "cancel", text: "authenticate before cancelling a registration" });
    const { username, password } = readSubmission(query, [FORM_REGISTER]);
    // §3.1: every field offered must be filled, and an empty password counts as missing.
    if (!username || !password) throw new StanzaError("not-acceptable", "both a username and a password are required");
    const local = localpartOn(username, session.host);
    if (local === null) throw new StanzaError("not-acceptable", "that username is not allowed");
    if (!usablePassword(password)) throw new StanzaError("not-acceptable", "that password contains characters that are not allowed");
    if (session.data.get(m.name) === REGISTERED_MARK) throw new StanzaError("not-acceptable", "one account per connection: log in now");
    if (!limiter.tryTake(session.ip)) {
      throw new StanzaError("policy-violation", { type: "wait", text: "too many accounts were created from your address; try again later" });
    }
    let outcome: Awaited<ReturnType<typeof createAccount>>;
    try {
      outcome = await createAccount(m.storage, session.host, local, password);
    } catch (err) {
      limiter.refund(session.ip);
      throw err;
    }
    if (outcome !== "created") {
      limiter.refund(session.ip);
      if (outcome === "exists") throw new StanzaError("conflict", "that username is taken");
      throw new StanzaError("not-acceptable", "that username is not allowed");
    }
    session.data.set(m.name, REGISTERED_MARK);
    m.log.info({ account: `${local}@${session.host}`, ip: session.ip }, "account registered in-band");
  }
}

function setupAccount(m: ModuleApi): void {
  m.onIq(
    "get",
    NS.register,
    "query",
    (ev) => {
      const account = ownAccount(ev);
      if (!account) return;
      // §3.1: <registered/> and what is on file; the password is never on file, so it stays empty.
      return xml(
        "query",
        { xmlns: NS.register },
        xml("registered", {}),
        xml("instructions", {}, "You are registered. Send a new password to change it, or <remove/> to delete the account."),
        xml("username", {}, account.local),
        xml("password", {}),
      );
    },
    { targets: ["self", "host"] },
  );

  // §3.2 cancellation needs the result sent before the streams close, so it is a plain hook
  // (ahead of the IQ handler below) that replies itself.
  for (const target of ["self", "host"] as const) {
    m.hook<IqEvent>(`iq-set/${target}/${NS.register}:query`, (ev) => (ev.payload.getChild("remove") ? cancel(ev) : false), 10);
  }

  async function cancel(ev: IqEvent): Promise<boolean> {
    const account = ownAccount(ev);
    const origin = ev.origin;
    if (!account || !origin) return false;
    if (childElements(ev.payload).length !== 1) {
      m.bounce(ev, new StanzaError("bad-request", "<remove/> must be the only child of <query/>"));
      return true;
    }
    await m.fire<AccountDeletingEvent>("account/deleting", { jid: account });
    if (!(await m.storage.users.delete(account.domain, account.local))) {
      m.bounce(ev, new StanzaError("registration-required", "there is no such account"));
      return true;
    }
    m.log.info({ account: account.toString() }, "account deleted in-band");
    origin.send(iqResult(ev.stanza));
    for (const session of m.sessions.resources(account)) session.close("not-authorized", "the account has been deleted");
    return true;
  }

  m.onIq(
    "set",
    NS.register,
    "query",
    async (ev) => {
      const account = ownAccount(ev);
      if (!account || ev.payload.getChild("remove")) return;
      if (!ev.origin?.secure) throw new StanzaError("not-authorized", { type: "modify", text: "change passwords only over TLS" });
      const { username, password } = readSubmission(ev.payload, [FORM_CHANGE_PASSWORD, FORM_REGISTER]);
      // §3.3: an empty password must leave the old one in place.
      if (!username || !password) throw new StanzaError("bad-request", "a password change needs <username/> and a non-empty <password/>");
      if (localpartOn(username, account.domain) !== account.local) throw new StanzaError("not-allowed", "you can only change your own password");
      if (!usablePassword(password)) throw new StanzaError("not-acceptable", "that password contains characters that are not allowed");
      if (!(await setPassword(m.storage, account.domain, account.local, password))) throw new StanzaError("registration-required", "there is no such account");
      m.log.info({ account: account.toString() }, "password changed in-band");
      return true;
    },
    { targets: ["self", "host"] },
  );
}

export default defineModule({
  name: "register",
  xeps: [
    {
      xep: 77,
      version: "2.4",
      status: "complete",
      note: "Registration over TLS only, limited per address ([registration]); password change and cancellation",
    },
  ],
  setup(m) {
    m.addFeature(NS.register);
    setupPreauth(m);
    setupAccount(m);
  },
});
