-- Prosody 0.12 (Debian 12) as a reference server for Parley's benchmark (npm run bench:compare).
-- Based on conformance/reference/prosody.cfg.lua; bench/reference/servers.ts copies it into the
-- instance's runtime directory, filling in that directory, its own loopback address and the
-- storage ("internal", the default flat files, or "sql": SQLite via lua-dbi-sqlite3).
-- What differs from the conformance copy, and why:
-- - admin_shell: accounts are created in one Lua loop through the admin socket, not one
--   prosodyctl process per account (about 2 a second);
-- - no register: nobody registers during a benchmark;
-- - mam keeps its defaults (default_archive_policy = true: every chat message is archived),
--   as users run it;
-- - a MUC service at conference.prosody.test for the muc scenario. Prosody 0.12's own MUC has no
--   occupant limit and no message rate limit (those are mod_muc_max_occupants and
--   mod_muc_limits from prosody-modules, not installed), and mod_limits (c2s byte rates) is not
--   enabled, so nothing needs raising for 1,000 occupants and the benchmark's rates; rooms keep
--   their defaults (20 messages of history, which the benchmark's joins decline).
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
log = { info = "@DIR@/prosody.log"; error = "@DIR@/prosody.err" }

interfaces = { "@ADDRESS@" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { 5223 }
s2s_ports = { }
http_ports = { }
https_ports = { }
certificates = "@DIR@/certs"
unbound = { resolvconf = "@DIR@/resolv.conf"; hoststxt = "/etc/hosts" }

authentication = "internal_hashed"
storage = "@STORAGE@"
sql = { driver = "SQLite3"; database = "prosody.sqlite" }
c2s_require_encryption = true

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "private"; "vcard_legacy"; "pep";
  "version"; "uptime"; "time"; "ping"; "lastactivity";
  "carbons"; "blocklist"; "mam"; "smacks"; "csi_simple"; "admin_shell";
}
modules_disabled = { "s2s" }

VirtualHost "prosody.test"

Component "conference.prosody.test" "muc"
  -- Anyone may create a room (the benchmark's first joiner does), as by default; said here so
  -- that a changed default cannot quietly break the scenario.
  restrict_room_creation = false
