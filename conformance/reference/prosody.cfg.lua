-- Prosody 0.12 (Debian 12) as a reference server for Parley's conformance runner.
-- run.sh copies this file into its runtime directory, replacing @RUN@ with that directory.
-- One virtual host, prosody.test, on 127.0.0.2 only, with a MUC service (room archives on) and
-- an upload service (HTTP on 127.0.0.2:5280); s2s on 127.0.0.2:5269 with ejabberd.test (the
-- scenarios across servers; run.sh puts both domains in /etc/hosts), no DNS off this machine.
pidfile = "@RUN@/prosody/prosody.pid"
data_path = "@RUN@/prosody/data"
log = { info = "@RUN@/prosody/prosody.log"; error = "@RUN@/prosody/prosody.err" }

interfaces = { "127.0.0.2" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { 5223 }
s2s_ports = { 5269 }
http_ports = { 5280 }
http_interfaces = { "127.0.0.2" }
https_ports = { }
certificates = "@RUN@/prosody/certs"
unbound = { resolvconf = "@RUN@/resolv.conf"; hoststxt = "/etc/hosts" }

authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_registration = true

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "private"; "vcard_legacy"; "pep";
  "version"; "uptime"; "time"; "ping"; "register"; "lastactivity";
  "carbons"; "blocklist"; "mam"; "smacks"; "csi_simple"; "dialback";
  "bosh"; "websocket";
}
-- BOSH (/http-bind) and WebSocket (/xmpp-websocket) on the plain HTTP port: loopback only, so
-- count them as encrypted (c2s_require_encryption would refuse them otherwise).
consider_bosh_secure = true
consider_websocket_secure = true
-- Self-signed certificates on both sides: dialback over STARTTLS (XEP-0220), not PKIX.
s2s_secure_auth = false

VirtualHost "prosody.test"
  -- Requests come to http://127.0.0.2:5280/ with that Host header.
  http_host = "127.0.0.2"

Component "conference.prosody.test" "muc"
  modules_enabled = { "muc_mam" }
  muc_log_by_default = true
  restrict_room_creation = false

Component "upload.prosody.test" "http_file_share"
  http_file_share_size_limit = 10485760
  http_host = "127.0.0.2"
  http_external_url = "http://127.0.0.2:5280/"
