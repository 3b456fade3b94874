// Specs for protocol/forms.ts: XEP-0004 data forms and XEP-0068 FORM_TYPE.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { xml } from "../../protocol/xml/element.ts";
import { NS } from "../../protocol/ns.ts";
import { StanzaError } from "../../protocol/errors.ts";
import { parseXml, reparse } from "../support/xml.ts";
import {
  assertValidSubmission,
  buildForm,
  formType,
  getBoolean,
  getValue,
  getValues,
  parseForm,
  validateSubmission,
  type DataForm,
  type FieldType,
  type FormField,
} from "../../protocol/forms.ts";

function assertCondition(fn: () => unknown, condition: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StanzaError && e.condition === condition);
}

// XEP-0004 §5.1, "Service Returns Bot Creation Form" (whitespace trimmed).
const BOT_FORM = `<x xmlns='jabber:x:data' type='form'>
  <title>Bot Configuration</title>
  <instructions>Fill out this form to configure your new bot!</instructions>
  <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>
  <field type='fixed'><value>Section 1: Bot Info</value></field>
  <field type='text-single' label='The name of your bot' var='botname'/>
  <field type='text-multi' label='Helpful description of your bot' var='description'/>
  <field type='boolean' label='Public bot?' var='public'><required/></field>
  <field type='text-private' label='Password for special access' var='password'/>
  <field type='list-multi' label='What features will the bot support?' var='features'>
    <option label='Contests'><value>contests</value></option>
    <option label='News'><value>news</value></option>
    <option label='Polls'><value>polls</value></option>
    <option label='Reminders'><value>reminders</value></option>
    <option label='Search'><value>search</value></option>
    <value>news</value>
    <value>search</value>
  </field>
  <field type='list-single' label='Maximum number of subscribers' var='maxsubs'>
    <value>20</value>
    <option label='10'><value>10</value></option>
    <option label='20'><value>20</value></option>
    <option label='30'><value>30</value></option>
    <option label='50'><value>50</value></option>
    <option label='100'><value>100</value></option>
    <option label='None'><value>none</value></option>
  </field>
  <field type='jid-multi' label='People to invite' var='invitelist'>
    <desc>Tell all your friends about your new bot!</desc>
  </field>
  <field type='jid-single' label='Your JID' var='botjid'/>
</x>`;

// XEP-0004 §5.1, "User Submits Bot Creation Form".
const BOT_SUBMIT = `<x xmlns='jabber:x:data' type='submit'>
  <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>
  <field type='text-single' var='botname'><value>The Jabber Google Bot</value></field>
  <field type='text-multi' var='description'>
    <value>This bot enables you to send requests to</value>
    <value>Google and receive the search results right</value>
    <value>in your Jabber client. It&apos; really cool!</value>
    <value>It even supports Google News!</value>
  </field>
  <field type='boolean' var='public'><value>0</value></field>
  <field type='text-private' var='password'><value>v3r0na</value></field>
  <field type='list-multi' var='features'><value>news</value><value>search</value></field>
  <field type='list-single' var='maxsubs'><value>50</value></field>
  <field type='jid-multi' var='invitelist'>
    <value>juliet@capulet.com</value>
    <value>benvolio@montague.net</value>
  </field>
</x>`;

// XEP-0004 §5.2, "Service Returns Search Results" (two of the items).
const SEARCH_RESULT = `<x xmlns='jabber:x:data' type='result'>
  <title>Joogle Search: verona</title>
  <reported><field var='name'/><field var='url'/></reported>
  <item>
    <field var='name'><value>Comune di Verona - Benvenuti nel sito ufficiale</value></field>
    <field var='url'><value>http://www.comune.verona.it/</value></field>
  </item>
  <item>
    <field var='name'><value>benvenuto!</value></field>
    <field var='url'><value>http://www.hellasverona.it/</value></field>
  </item>
</x>`;

const form = (fields: FormField[], type: DataForm["type"] = "form"): DataForm => ({ type, fields });

describe("parseForm", () => {
  test("reads the XEP's bot configuration form", () => {
    const f = parseForm(parseXml(BOT_FORM));
    assert.equal(f.type, "form");
    assert.equal(f.title, "Bot Configuration");
    assert.deepEqual(f.instructions, ["Fill out this form to configure your new bot!"]);
    assert.equal(formType(f), "jabber:bot");
    assert.deepEqual(f.fields[1], { type: "fixed", values: ["Section 1: Bot Info"] });
    const pub = f.fields.find((x) => x.var === "public");
    assert.deepEqual(pub, { var: "public", type: "boolean", label: "Public bot?", required: true, values: [] });
    const features = f.fields.find((x) => x.var === "features");
    assert.deepEqual(features?.values, ["news", "search"]);
    assert.equal(features?.options?.length, 5);
    assert.deepEqual(features?.options?.[0], { label: "Contests", value: "contests" });
    assert.equal(f.fields.find((x) => x.var === "invitelist")?.desc, "Tell all your friends about your new bot!");
  });

  test("reads the XEP's submission with its helpers", () => {
    const s = parseForm(parseXml(BOT_SUBMIT));
    assert.equal(getValue(s, "botname"), "The Jabber Google Bot");
    assert.equal(getValues(s, "description").length, 4);
    assert.equal(getValues(s, "description")[2], "in your Jabber client. It' really cool!");
    assert.equal(getBoolean(s, "public"), false);
    assert.deepEqual(getValues(s, "invitelist"), ["juliet@capulet.com", "benvolio@montague.net"]);
    assert.equal(getValue(s, "nonexistent"), undefined);
    assert.deepEqual(getValues(s, "nonexistent"), []);
    assert.equal(getBoolean(s, "nonexistent"), undefined);
  });

  test("reads reported fields and items of a result", () => {
    const r = parseForm(parseXml(SEARCH_RESULT));
    assert.deepEqual(r.reported, [{ var: "name", values: [] }, { var: "url", values: [] }]);
    assert.equal(r.items?.length, 2);
    assert.deepEqual(r.items?.[1][1], { var: "url", values: ["http://www.hellasverona.it/"] });
    assert.deepEqual(r.fields, []);
  });

  test("reads an unknown field type as text-single, as §3.3 requires", () => {
    const f = parseForm(parseXml("<x xmlns='jabber:x:data' type='form'><field var='a' type='colour'/></x>"));
    assert.equal(f.fields[0].type, "text-single");
  });

  test("answers bad-request for forms that break XEP-0004's MUSTs", () => {
    const bad = [
      "<x xmlns='jabber:x:oob' type='form'/>",
      "<form xmlns='jabber:x:data' type='form'/>",
      "<x xmlns='jabber:x:data'/>",
      "<x xmlns='jabber:x:data' type='FORM'/>",
      "<x xmlns='jabber:x:data' type='form'><field type='text-single'/></x>",
      "<x xmlns='jabber:x:data' type='form'><field/></x>",
      "<x xmlns='jabber:x:data' type='form'><field var='a'/><field var='a'/></x>",
      "<x xmlns='jabber:x:data' type='form'><field var='a' type='list-single'><option/></field></x>",
      "<x xmlns='jabber:x:data' type='form'><field var='a' type='list-single'><option><value>1</value><value>2</value></option></field></x>",
      "<x xmlns='jabber:x:data' type='form'><field var='a' type='text-single'><option><value>1</value></option></field></x>",
      "<x xmlns='jabber:x:data' type='submit'><field var='a'><value>1</value><value>2</value></field></x>",
      "<x xmlns='jabber:x:data' type='submit'><field var='a' type='boolean'><value>1</value><value>0</value></field></x>",
      "<x xmlns='jabber:x:data' type='result'><reported><field var='a'/></reported><reported><field var='b'/></reported></x>",
      "<x xmlns='jabber:x:data' type='result'><item><field/></item></x>",
    ];
    for (const text of bad) assertCondition(() => parseForm(parseXml(text)), "bad-request");
  });

  test("accepts what XEP-0004 allows: fixed without var, several values where multi-valued", () => {
    const f = parseForm(
      parseXml(
        "<x xmlns='jabber:x:data' type='submit'><field type='fixed'/>" +
          "<field var='h' type='hidden'><value>1</value><value>2</value></field>" +
          "<field var='j' type='jid-multi'><value>a@b</value><value>c@d</value></field></x>",
      ),
    );
    assert.equal(f.fields.length, 3);
  });

  test("ignores elements of other namespaces (e.g. XEP-0122 validation)", () => {
    const f = parseForm(
      parseXml(
        "<x xmlns='jabber:x:data' type='form'><field var='n' type='text-single'>" +
          "<validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:integer'/><value>5</value></field></x>",
      ),
    );
    assert.deepEqual(f.fields[0], { var: "n", type: "text-single", values: ["5"] });
  });

  test("property: arbitrary <x/> trees give a form or bad-request, never another failure", () => {
    const fieldEl = fc.record({
      var: fc.option(fc.constantFrom("a", "b", "FORM_TYPE"), { nil: undefined }),
      type: fc.option(fc.constantFrom("boolean", "fixed", "hidden", "list-single", "text-single", "bogus", "toString"), { nil: undefined }),
      children: fc.array(fc.constantFrom("value", "option", "required", "desc", "x"), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(
        fc.option(fc.constantFrom("form", "submit", "cancel", "result", "other"), { nil: undefined }),
        fc.array(fc.oneof(fieldEl, fc.constant("reported" as const), fc.constant("item" as const)), { maxLength: 5 }),
        (type, entries) => {
          const x = xml("x", { xmlns: NS.dataForms, type });
          for (const entry of entries) {
            if (typeof entry === "string") x.append(xml(entry, {}, xml("field", { var: "r" })));
            else x.append(xml("field", { var: entry.var, type: entry.type }, ...entry.children.map((c) => xml(c, {}, c === "option" ? xml("value", {}, "v") : "t"))));
          }
          try {
            const f = parseForm(x);
            assert.ok(Array.isArray(f.fields));
          } catch (e) {
            assert.ok(e instanceof StanzaError && e.condition === "bad-request", String(e));
          }
        },
      ),
    );
  });
});

describe("buildForm", () => {
  test("writes jabber:x:data elements a client reads back", () => {
    const original = parseForm(parseXml(BOT_FORM));
    const built = buildForm(original);
    assert.equal(built.getName(), "x");
    assert.equal(built.getNS(), NS.dataForms);
    assert.equal(built.attrs.type, "form");
    const field = built.getChildByAttr("var", "maxsubs");
    assert.equal(field?.getNS(), NS.dataForms);
    assert.equal(field?.getChildren("option").length, 6);
    assert.deepEqual(parseForm(reparse(built)), original);
  });

  test("round-trips results with reported fields and items", () => {
    const original = parseForm(parseXml(SEARCH_RESULT));
    assert.deepEqual(parseForm(reparse(buildForm(original))), original);
  });

  test("property: build then parse is the identity for valid forms", () => {
    const text = fc.string({ unit: "grapheme-ascii", maxLength: 12 });
    const singleTypes: FieldType[] = ["boolean", "jid-single", "list-single", "text-private", "text-single"];
    const multiTypes: FieldType[] = ["hidden", "jid-multi", "list-multi", "text-multi"];
    const field = fc.oneof(
      fc.record(
        { type: fc.constantFrom(...singleTypes), label: text, desc: text, required: fc.constant(true), values: fc.array(text, { maxLength: 1 }) },
        { requiredKeys: ["type", "values"] },
      ),
      fc.record({ type: fc.constantFrom(...multiTypes), label: text, values: fc.array(text, { maxLength: 3 }) }, { requiredKeys: ["type", "values"] }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom("form", "submit", "result" as const),
        fc.option(text, { nil: undefined }),
        fc.array(text, { maxLength: 2 }),
        fc.array(field, { maxLength: 5 }),
        (type, title, instructions, rawFields) => {
          const fields: FormField[] = rawFields.map((f, i) => {
            const out: FormField = { var: `f${i}`, ...f };
            if (out.type === "list-single" || out.type === "list-multi") out.options = [{ label: "One", value: "1" }, { value: "2" }];
            return out;
          });
          const dataForm: DataForm = { type: type as DataForm["type"], fields };
          if (title !== undefined) dataForm.title = title;
          if (instructions.length > 0) dataForm.instructions = instructions;
          assert.deepEqual(parseForm(reparse(buildForm(dataForm))), dataForm);
        },
      ),
    );
  });
});

describe("formType (XEP-0068)", () => {
  test("is the hidden FORM_TYPE value", () => {
    assert.equal(formType(form([{ var: "FORM_TYPE", type: "hidden", values: ["urn:xmpp:mam:2"] }])), "urn:xmpp:mam:2");
    assert.equal(formType(form([{ var: "x", values: ["y"] }])), undefined);
  });

  test("ignores a non-hidden FORM_TYPE in forms and results, but accepts an untyped one in a submission", () => {
    assert.equal(formType(form([{ var: "FORM_TYPE", type: "text-single", values: ["urn:x"] }])), undefined);
    assert.equal(formType(form([{ var: "FORM_TYPE", type: "text-single", values: ["urn:x"] }], "result")), undefined);
    assert.equal(formType(form([{ var: "FORM_TYPE", values: ["urn:x"] }], "submit")), "urn:x");
  });
});

describe("getBoolean", () => {
  test("reads 1/true and 0/false, and refuses anything else as not-acceptable", () => {
    const f = form(
      [
        { var: "a", values: ["1"] },
        { var: "b", values: ["true"] },
        { var: "c", values: ["0"] },
        { var: "d", values: ["false"] },
        { var: "e", values: ["yes"] },
        { var: "f", values: ["TRUE"] },
        { var: "g", values: [] },
      ],
      "submit",
    );
    assert.deepEqual(["a", "b", "c", "d"].map((v) => getBoolean(f, v)), [true, true, false, false]);
    assertCondition(() => getBoolean(f, "e"), "not-acceptable");
    assertCondition(() => getBoolean(f, "f"), "not-acceptable");
    assert.equal(getBoolean(f, "g"), undefined);
  });
});

describe("validateSubmission", () => {
  const template = parseForm(parseXml(BOT_FORM));
  const submission = () => parseForm(parseXml(BOT_SUBMIT));

  test("accepts the XEP's submission for the XEP's form", () => {
    assert.deepEqual(validateSubmission(template, submission()), { ok: true });
  });

  test("requires type submit and a matching FORM_TYPE", () => {
    assert.deepEqual(validateSubmission(template, { ...submission(), type: "cancel" }), {
      ok: false,
      field: "",
      reason: "form type must be submit",
    });
    const other = submission();
    other.fields[0] = { var: "FORM_TYPE", type: "hidden", values: ["urn:other"] };
    assert.equal(validateSubmission(template, other).ok, false);
    const noFormType = submission();
    noFormType.fields.shift();
    assert.deepEqual(validateSubmission(template, noFormType), { ok: true });
  });

  test("reports a missing or empty required field by name", () => {
    const missing = submission();
    missing.fields = missing.fields.filter((f) => f.var !== "public");
    assert.deepEqual(validateSubmission(template, missing), { ok: false, field: "public", reason: "required field is missing" });
    const empty = submission();
    empty.fields.find((f) => f.var === "public")!.values = [""];
    assert.equal(validateSubmission(template, empty).ok, false);
  });

  test("rejects values outside the offered options, bad booleans and extra values", () => {
    const cases: Array<[string, string[]]> = [
      ["maxsubs", ["1000"]],
      ["features", ["news", "weather"]],
      ["public", ["maybe"]],
      ["botname", ["a", "b"]],
      ["maxsubs", ["10", "20"]],
    ];
    for (const [name, values] of cases) {
      const s = submission();
      s.fields.find((f) => f.var === name)!.values = values;
      const result = validateSubmission(template, s);
      assert.equal(result.ok, false, `${name}=${values.join(",")}`);
      assert.equal(result.ok === false && result.field, name);
    }
  });

  test("checks JIDs only through the given callback", () => {
    const s = submission();
    s.fields.find((f) => f.var === "invitelist")!.values = ["juliet@capulet.com", "not a jid"];
    assert.deepEqual(validateSubmission(template, s), { ok: true });
    const isValidJid = (j: string) => !j.includes(" ");
    assert.deepEqual(validateSubmission(template, s, { isValidJid }), {
      ok: false,
      field: "invitelist",
      reason: "value is not a valid JID",
    });
  });

  test("ignores fields the form did not offer (§3.1), but not a repeated field", () => {
    const s = submission();
    s.fields.push({ var: "x-extra", values: ["1", "2"] });
    assert.deepEqual(validateSubmission(template, s), { ok: true });
    s.fields.push({ var: "botname", values: ["again"] });
    assert.equal(validateSubmission(template, s).ok, false);
  });

  test("assertValidSubmission throws not-acceptable naming the field", () => {
    const s = submission();
    s.fields.find((f) => f.var === "maxsubs")!.values = ["1000"];
    assert.throws(
      () => assertValidSubmission(template, s),
      (e: unknown) => e instanceof StanzaError && e.condition === "not-acceptable" && e.text?.startsWith("maxsubs:") === true,
    );
    assert.doesNotThrow(() => assertValidSubmission(template, submission()));
  });
});
