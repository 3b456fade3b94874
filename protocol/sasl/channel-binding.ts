// Channel binding types for SCRAM-*-PLUS: RFC 9266 (tls-exporter) and RFC 5929 §4
// (tls-server-end-point). The transport reads the bytes from its TLS socket; this file names the
// types, holds the RFC 9266 exporter parameters, and computes tls-server-end-point from a
// certificate, which needs no socket.
//
// RFC 9266 §3: tls-exporter is only safe on TLS 1.3, or on TLS 1.2 with the extended master
// secret; the transport must not offer it otherwise.
import { createHash } from "node:crypto";

export type ChannelBindingType = "tls-exporter" | "tls-server-end-point";

/** The channel binding types Parley implements, in the order the transport should prefer them. */
export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = ["tls-exporter", "tls-server-end-point"];

/** RFC 9266 §2: tlsSocket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, empty context). */
export const TLS_EXPORTER_LABEL = "EXPORTER-Channel-Binding";
export const TLS_EXPORTER_LENGTH = 32;

export function isChannelBindingType(name: string): name is ChannelBindingType {
  return (CHANNEL_BINDING_TYPES as readonly string[]).includes(name);
}

// RFC 5929 §4.1: hash the certificate with the hash of its signature algorithm, except that MD5
// and SHA-1 are replaced by SHA-256. Algorithms with no single hash (Ed25519, Ed448, RSASSA-PSS
// whose hash sits in parameters) leave the binding undefined.
const HASH_BY_SIGNATURE_OID: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.4": "sha256", // md5WithRSAEncryption
  "1.2.840.113549.1.1.5": "sha256", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.14": "sha224", // sha224WithRSAEncryption
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10045.4.1": "sha256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.10040.4.3": "sha256", // dsa-with-sha1
  "2.16.840.1.101.3.4.3.1": "sha224", // dsa-with-sha224
  "2.16.840.1.101.3.4.3.2": "sha256", // dsa-with-sha256
};

/**
 * RFC 5929 §4.1 tls-server-end-point data for the server's certificate (DER), or null when the
 * certificate cannot be read or its signature algorithm leaves the binding undefined.
 */
export function tlsServerEndPoint(certificateDer: Buffer): Buffer | null {
  const oid = signatureAlgorithmOid(certificateDer);
  const hash = oid === null ? undefined : HASH_BY_SIGNATURE_OID[oid];
  return hash === undefined ? null : createHash(hash).update(certificateDer).digest();
}

/** The OID of Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2), as dotted text. */
export function signatureAlgorithmOid(der: Buffer): string | null {
  const certificate = readTlv(der, 0);
  if (certificate?.tag !== SEQUENCE || certificate.end !== der.length) return null;
  const tbsCertificate = readTlv(der, certificate.start);
  if (tbsCertificate?.tag !== SEQUENCE) return null;
  const algorithm = readTlv(der, tbsCertificate.end);
  if (algorithm?.tag !== SEQUENCE || algorithm.end > certificate.end) return null;
  const oid = readTlv(der, algorithm.start);
  if (oid?.tag !== OBJECT_IDENTIFIER || oid.end > algorithm.end) return null;
  return decodeOid(der.subarray(oid.start, oid.end));
}

const SEQUENCE = 0x30;
const OBJECT_IDENTIFIER = 0x06;

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

// DER only: definite lengths, single-byte tags, which is all a certificate's outer layers use.
function readTlv(der: Buffer, offset: number): Tlv | null {
  if (offset + 2 > der.length) return null;
  const tag = der[offset]!;
  const first = der[offset + 1]!;
  let start = offset + 2;
  let length = first;
  if (first >= 0x80) {
    const lengthBytes = first & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || start + lengthBytes > der.length) return null;
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + der[start + i]!;
    start += lengthBytes;
  }
  const end = start + length;
  return end > der.length ? null : { tag, start, end };
}

function decodeOid(bytes: Buffer): string | null {
  if (bytes.length === 0) return null;
  const arcs: number[] = [];
  let value = 0;
  let digits = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    // Seven base-128 digits keep every arc below 2^49, well inside a double's exact range.
    if (++digits > 7) return null;
    if (byte & 0x80) continue;
    if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
    digits = 0;
  }
  return digits === 0 ? arcs.join(".") : null;
}
