// The modules Parley ships, in load order. `[modules] disabled = [...]` in parley.toml turns
// any of them off, and a module that is not loaded is not advertised anywhere.
import type { ModuleDefinition } from "../core/module.ts";
import ping from "./ping/index.ts";
import roster from "./roster/index.ts";
import presence from "./presence/index.ts";
import message from "./message/index.ts";
import offline from "./offline/index.ts";
import mam from "./mam/index.ts";
import carbons from "./carbons/index.ts";
import csi from "./csi/index.ts";
import version from "./version/index.ts";
import time from "./time/index.ts";
import last from "./last/index.ts";
import vcard from "./vcard/index.ts";
import register from "./register/index.ts";
import sm from "./sm/index.ts";
import disco from "./disco/index.ts";
import muc from "./muc/index.ts";
import blocking from "./blocking/index.ts";
import pep from "./pep/index.ts";
import privateStorage from "./private/index.ts";
import bookmarks from "./bookmarks/index.ts";
import avatar from "./avatar/index.ts";
import upload from "./upload/index.ts";
import push from "./push/index.ts";
import pushAppserver from "./push-appserver/index.ts";

export const builtinModules: ModuleDefinition[] = [
  ping,
  roster,
  presence,
  message,
  offline,
  mam,
  carbons,
  csi,
  version,
  time,
  last,
  vcard,
  register,
  sm,
  disco,
  muc,
  blocking,
  pep,
  privateStorage,
  bookmarks,
  avatar,
  upload,
  push,
  pushAppserver,
];
