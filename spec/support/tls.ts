// A bare TLS handshake against a Direct TLS listener (XEP-0368): which ALPN protocol the server
// chose, or the error that ended the handshake. No XMPP is spoken.
import tls from "node:tls";

export type AlpnOutcome = { protocol: string | false | null } | { error: string };

export function alpnHandshake(host: string, port: number, servername: string, ALPNProtocols?: string[]): Promise<AlpnOutcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false, ...(ALPNProtocols ? { ALPNProtocols } : {}) });
    socket.once("secureConnect", () => {
      resolve({ protocol: socket.alpnProtocol ?? null });
      socket.destroy();
    });
    socket.once("error", (e: Error & { code?: string }) => resolve({ error: e.code ?? e.message }));
  });
}
