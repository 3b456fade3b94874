// XEP-0004: Data Forms, version 2.13.1, with XEP-0068: Field Standardization for Data Forms
// (FORM_TYPE), version 1.3.
// parseForm reads what peers send and throws StanzaError("bad-request") on a form that breaks
// the XEP's MUSTs; validateSubmission checks a submission against the form we offered.
import { Element, xml, childElements } from "./xml/element.ts";
import { NS } from "./ns.ts";
import { StanzaError } from "./errors.ts";

export type FieldType =
  | "boolean"
  | "fixed"
  | "hidden"
  | "jid-multi"
  | "jid-single"
  | "list-multi"
  | "list-single"
  | "text-multi"
  | "text-private"
  | "text-single";

const FIELD_TYPES: ReadonlySet<string> = new Set<FieldType>([
  "boolean",
  "fixed",
  "hidden",
  "jid-multi",
  "jid-single",
  "list-multi",
  "list-single",
  "text-multi",
  "text-private",
  "text-single",
]);

/** §3.2: only these may carry more than one <value/>. */
const MULTI_VALUED: ReadonlySet<FieldType> = new Set<FieldType>(["list-multi", "jid-multi", "text-multi", "hidden"]);

export type FormType = "form" | "submit" | "cancel" | "result";

const FORM_TYPES: ReadonlySet<string> = new Set<FormType>(["form", "submit", "cancel", "result"]);

export interface FormOption {
  label?: string;
  value: string;
}

export interface FormField {
  /** Required for every type except fixed (§3.2). */
  var?: string;
  /** Absent means text-single (§3.2), which is also what an unknown type is read as (§3.3). */
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  /** Only for list-single and list-multi. */
  options?: FormOption[];
  values: string[];
}

export interface DataForm {
  type: FormType;
  title?: string;
  instructions?: string[];
  fields: FormField[];
  /** §3.4, results only: the table header. */
  reported?: FormField[];
  /** §3.4, results only: one row of fields per item. */
  items?: FormField[][];
}

/** The XEP-0068 field that names the form's meaning. */
export const FORM_TYPE_FIELD = "FORM_TYPE";

/**
 * Reads an <x xmlns="jabber:x:data"/>. Throws StanzaError("bad-request") when the element is
 * not a data form, has no valid type, or breaks a MUST of §3: a non-fixed field without 'var',
 * two fields with the same 'var', an <option/> without exactly one <value/>, options on a
 * non-list field, more than one value in a single-valued field, more than one <reported/>.
 */
export function parseForm(x: Element): DataForm {
  if (x.getName() !== "x" || x.getNS() !== NS.dataForms) throw badForm("not a jabber:x:data form");
  const type = x.attrs.type;
  if (type === undefined || !FORM_TYPES.has(type)) throw badForm("form type must be form, submit, cancel or result");
  const form: DataForm = { type: type as FormType, fields: [] };
  const instructions: string[] = [];
  let sawReported = false;
  for (const child of childElements(x)) {
    if (child.getNS() !== NS.dataForms) continue; // extensions (e.g. XEP-0122, XEP-0221) live in their own namespaces
    switch (child.getName()) {
      case "title":
        form.title ??= child.getText();
        break;
      case "instructions":
        instructions.push(child.getText());
        break;
      case "field":
        form.fields.push(parseField(child));
        break;
      case "reported":
        if (sawReported) throw badForm("more than one <reported/>");
        sawReported = true;
        form.reported = parseFieldList(child);
        break;
      case "item":
        (form.items ??= []).push(parseFieldList(child));
        break;
    }
  }
  if (instructions.length > 0) form.instructions = instructions;
  assertUniqueVars(form.fields);
  return form;
}

/** Writes a form as <x xmlns="jabber:x:data"/> in the order of the XEP's examples. */
export function buildForm(form: DataForm): Element {
  const x = xml("x", { xmlns: NS.dataForms, type: form.type });
  if (form.title !== undefined) x.append(xml("title", {}, form.title));
  for (const line of form.instructions ?? []) x.append(xml("instructions", {}, line));
  for (const field of form.fields) x.append(buildField(field));
  if (form.reported) x.append(xml("reported", {}, ...form.reported.map(buildField)));
  for (const item of form.items ?? []) x.append(xml("item", {}, ...item.map(buildField)));
  return x;
}

/**
 * The XEP-0068 FORM_TYPE value, or undefined. In a form or result, a FORM_TYPE field whose type
 * is given and is not hidden is not a context indicator (XEP-0068 §3.1) and is ignored;
 * submissions often omit field types, so there any FORM_TYPE field counts.
 */
export function formType(form: DataForm): string | undefined {
  const field = getField(form, FORM_TYPE_FIELD);
  if (!field) return undefined;
  if ((form.type === "form" || form.type === "result") && field.type !== undefined && field.type !== "hidden") {
    return undefined;
  }
  return field.values[0];
}

export function getField(form: DataForm, name: string): FormField | undefined {
  return form.fields.find((f) => f.var === name);
}

/** The first value of a field, or undefined when the field is absent or empty. */
export function getValue(form: DataForm, name: string): string | undefined {
  return getField(form, name)?.values[0];
}

/** All values of a field; an absent field has none. */
export function getValues(form: DataForm, name: string): string[] {
  return [...(getField(form, name)?.values ?? [])];
}

/**
 * A boolean field's value ("1"/"true" or "0"/"false", §3.3 note), or undefined when the field
 * is absent or has no value. Any other value is the submitter's mistake: StanzaError
 * "not-acceptable", the condition §4 gives for invalid data.
 */
export function getBoolean(form: DataForm, name: string): boolean | undefined {
  const value = getValue(form, name);
  if (value === undefined) return undefined;
  const parsed = parseBoolean(value);
  if (parsed === undefined) throw new StanzaError("not-acceptable", `field ${name} must be a boolean`);
  return parsed;
}

export type ValidationResult = { ok: true } | { ok: false; field: string; reason: string };

export interface ValidationOptions {
  /** Checks one JID of a jid-single or jid-multi field; without it JIDs are not checked. */
  isValidJid?: (jid: string) => boolean;
}

/**
 * Checks a submission against the form we offered (§3, §4). Fields the template does not know
 * are ignored, as §3.1 requires of the processing entity. `field` names the first field at
 * fault; it is "" when the fault is the form as a whole (wrong type or FORM_TYPE).
 * Checked: type is submit; FORM_TYPE, when both carry one, matches; required fields have a
 * non-empty value; single-valued fields have at most one value; booleans are booleans; list
 * values are among the offered options (when options were offered); JIDs pass isValidJid.
 */
export function validateSubmission(template: DataForm, submitted: DataForm, opts: ValidationOptions = {}): ValidationResult {
  if (submitted.type !== "submit") return fail("", "form type must be submit");
  const expectedType = formType(template);
  const givenType = getValue(submitted, FORM_TYPE_FIELD);
  if (expectedType !== undefined && givenType !== undefined && givenType !== expectedType) {
    return fail("", `FORM_TYPE must be ${expectedType}`);
  }
  const seen = new Set<string>();
  for (const field of submitted.fields) {
    if (field.var === undefined) continue;
    if (seen.has(field.var)) return fail(field.var, "field appears more than once");
    seen.add(field.var);
  }
  for (const offered of template.fields) {
    if (offered.var === undefined || offered.var === FORM_TYPE_FIELD || offered.type === "fixed") continue;
    const problem = checkField(offered, getField(submitted, offered.var), opts);
    if (problem) return fail(offered.var, problem);
  }
  return { ok: true };
}

/** validateSubmission, throwing StanzaError("not-acceptable") naming the field (§4) on failure. */
export function assertValidSubmission(template: DataForm, submitted: DataForm, opts: ValidationOptions = {}): void {
  const result = validateSubmission(template, submitted, opts);
  if (!result.ok) {
    throw new StanzaError("not-acceptable", result.field ? `${result.field}: ${result.reason}` : result.reason);
  }
}

function checkField(offered: FormField, given: FormField | undefined, opts: ValidationOptions): string | undefined {
  const values = given?.values ?? [];
  const type = offered.type ?? "text-single";
  if (offered.required && !values.some((v) => v !== "")) return "required field is missing";
  if (!MULTI_VALUED.has(type) && values.length > 1) return "field takes a single value";
  if (type === "boolean") {
    if (values.some((v) => parseBoolean(v) === undefined)) return "value must be 0, 1, false or true";
  } else if (type === "list-single" || type === "list-multi") {
    const allowed = offered.options?.map((o) => o.value);
    if (allowed && allowed.length > 0) {
      const stray = values.find((v) => !allowed.includes(v));
      if (stray !== undefined) return "value is not one of the options";
    }
  } else if (type === "jid-single" || type === "jid-multi") {
    if (opts.isValidJid && values.some((v) => !opts.isValidJid!(v))) return "value is not a valid JID";
  }
  return undefined;
}

function parseField(el: Element): FormField {
  const field: FormField = { values: [] };
  const name = el.attrs.var;
  const typeAttr = el.attrs.type;
  if (typeAttr !== undefined) field.type = FIELD_TYPES.has(typeAttr) ? (typeAttr as FieldType) : "text-single";
  if (name !== undefined) field.var = name;
  else if (field.type !== "fixed") throw badForm("a field other than fixed needs a var");
  if (el.attrs.label !== undefined) field.label = el.attrs.label;
  for (const child of childElements(el)) {
    if (child.getNS() !== NS.dataForms) continue;
    switch (child.getName()) {
      case "desc":
        field.desc ??= child.getText();
        break;
      case "required":
        field.required = true;
        break;
      case "value":
        field.values.push(child.getText());
        break;
      case "option":
        (field.options ??= []).push(parseOption(child));
        break;
    }
  }
  const type = field.type ?? "text-single";
  if (field.options && type !== "list-single" && type !== "list-multi") {
    throw badForm(`field ${name ?? ""} has options but is not a list`);
  }
  if (field.values.length > 1 && !MULTI_VALUED.has(type)) {
    throw badForm(`field ${name ?? ""} takes a single value`);
  }
  return field;
}

function parseOption(el: Element): FormOption {
  const values = childElements(el).filter((c) => c.getName() === "value" && c.getNS() === NS.dataForms);
  if (values.length !== 1) throw badForm("an option needs exactly one value");
  const option: FormOption = { value: values[0].getText() };
  if (el.attrs.label !== undefined) option.label = el.attrs.label;
  return option;
}

function parseFieldList(el: Element): FormField[] {
  const fields = childElements(el)
    .filter((c) => c.getName() === "field" && c.getNS() === NS.dataForms)
    .map(parseField);
  assertUniqueVars(fields);
  return fields;
}

function buildField(field: FormField): Element {
  const el = xml("field", { var: field.var, type: field.type, label: field.label });
  if (field.desc !== undefined) el.append(xml("desc", {}, field.desc));
  if (field.required) el.append(xml("required"));
  for (const value of field.values) el.append(xml("value", {}, value));
  for (const option of field.options ?? []) {
    el.append(xml("option", { label: option.label }, xml("value", {}, option.value)));
  }
  return el;
}

function assertUniqueVars(fields: FormField[]): void {
  const seen = new Set<string>();
  for (const field of fields) {
    if (field.var === undefined) continue;
    if (seen.has(field.var)) throw badForm(`field ${field.var} appears more than once`);
    seen.add(field.var);
  }
}

/** xs:boolean, whose whitespace facet is "collapse": surrounding whitespace is not an error. */
function parseBoolean(value: string): boolean | undefined {
  const v = value.trim();
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  return undefined;
}

function fail(field: string, reason: string): ValidationResult {
  return { ok: false, field, reason };
}

function badForm(text: string): StanzaError {
  return new StanzaError("bad-request", text);
}
