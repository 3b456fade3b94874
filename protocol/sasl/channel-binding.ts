// Channel binding types for SCRAM-*-PLUS: RFC 9266 (tls-exporter) and RFC 5929 §4
// (tls-server-end-point, reading RSASSA-PSS parameters per RFC 4055 §3.1). The transport reads the bytes from its TLS socket; this file names the
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
// and SHA-1 are replaced by SHA-256. Algorithms with no single hash (Ed25519, Ed448) leave the
// binding undefined; RSASSA-PSS names its hash in its parameters (see pssHash).
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

const RSASSA_PSS = "1.2.840.113549.1.1.10";
const MGF1 = "1.2.840.113549.1.1.8";
const SHA1 = "1.3.14.3.2.26";
/** Digest algorithm OIDs, with SHA-1 replaced by SHA-256 as for signatures. */
const HASH_BY_DIGEST_OID: Readonly<Record<string, string>> = {
  [SHA1]: "sha256",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/**
 * RFC 5929 §4.1 tls-server-end-point data for the server's certificate (DER), or null when the
 * certificate cannot be read or its signature algorithm leaves the binding undefined.
 */
export function tlsServerEndPoint(certificateDer: Buffer): Buffer | null {
  const hash = endPointHash(certificateDer);
  return hash === null ? null : createHash(hash).update(certificateDer).digest();
}

/** The OID of Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2), as dotted text. */
export function signatureAlgorithmOid(der: Buffer): string | null {
  const algorithm = signatureAlgorithm(der);
  return algorithm === null ? null : algorithm.oid;
}

function endPointHash(der: Buffer): string | null {
  const algorithm = signatureAlgorithm(der);
  if (algorithm === null) return null;
  if (algorithm.oid === RSASSA_PSS) return pssHash(der, algorithm.parameters);
  return HASH_BY_SIGNATURE_OID[algorithm.oid] ?? null;
}

// RFC 4055 §3.1 RSASSA-PSS-params: hashAlgorithm [0] defaults to SHA-1 and maskGenAlgorithm [1]
// to MGF1 with SHA-1, and the two hashes may differ. Only when they agree does the signature
// use a single hash that RFC 5929 can name.
const PSS_HASH_ALGORITHM = 0xa0;
const PSS_MASK_GEN_ALGORITHM = 0xa1;

function pssHash(der: Buffer, parameters: Tlv | null): string | null {
  let hashOid = SHA1;
  let maskHashOid = SHA1;
  if (parameters !== null) {
    if (parameters.tag !== SEQUENCE) return null;
    // Every TLV is at least two bytes, so offset only grows and the walk ends in the parameters.
    for (let offset = parameters.start; offset < parameters.end; ) {
      const field = readTlv(der, offset, parameters.end);
      if (field === null) return null;
      offset = field.end;
      if (field.tag !== PSS_HASH_ALGORITHM && field.tag !== PSS_MASK_GEN_ALGORITHM) continue;
      const algorithm = explicitAlgorithm(der, field);
      if (algorithm === null) return null;
      if (field.tag === PSS_HASH_ALGORITHM) {
        hashOid = algorithm.oid;
        continue;
      }
      if (algorithm.oid !== MGF1 || algorithm.parameters === null) return null;
      const maskHash = algorithmIdentifier(der, algorithm.parameters);
      if (maskHash === null) return null;
      maskHashOid = maskHash.oid;
    }
  }
  return hashOid === maskHashOid ? (HASH_BY_DIGEST_OID[hashOid] ?? null) : null;
}

const SEQUENCE = 0x30;
const OBJECT_IDENTIFIER = 0x06;

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

interface AlgorithmIdentifier {
  oid: string;
  parameters: Tlv | null;
}

/** Certificate.signatureAlgorithm: the certificate's second field, after the TBSCertificate. */
function signatureAlgorithm(der: Buffer): AlgorithmIdentifier | null {
  const certificate = readTlv(der, 0);
  if (certificate?.tag !== SEQUENCE || certificate.end !== der.length) return null;
  const tbsCertificate = readTlv(der, certificate.start, certificate.end);
  if (tbsCertificate?.tag !== SEQUENCE) return null;
  const algorithm = readTlv(der, tbsCertificate.end, certificate.end);
  return algorithm === null ? null : algorithmIdentifier(der, algorithm);
}

/** RFC 5280 §4.1.1.2 AlgorithmIdentifier: SEQUENCE { OBJECT IDENTIFIER, parameters OPTIONAL }. */
function algorithmIdentifier(der: Buffer, sequence: Tlv): AlgorithmIdentifier | null {
  if (sequence.tag !== SEQUENCE) return null;
  const oid = readTlv(der, sequence.start, sequence.end);
  if (oid?.tag !== OBJECT_IDENTIFIER) return null;
  const dotted = decodeOid(der.subarray(oid.start, oid.end));
  if (dotted === null) return null;
  if (oid.end === sequence.end) return { oid: dotted, parameters: null };
  const parameters = readTlv(der, oid.end, sequence.end);
  return parameters?.end === sequence.end ? { oid: dotted, parameters } : null;
}

/** An [n] EXPLICIT field holding exactly one AlgorithmIdentifier. */
function explicitAlgorithm(der: Buffer, field: Tlv): AlgorithmIdentifier | null {
  const inner = readTlv(der, field.start, field.end);
  return inner?.end === field.end ? algorithmIdentifier(der, inner) : null;
}

// DER only: definite lengths, single-byte tags, which is all a certificate's outer layers and
// algorithm identifiers use. A TLV must end by `limit`, the end of whatever encloses it.
function readTlv(der: Buffer, offset: number, limit: number = der.length): Tlv | null {
  if (offset + 2 > limit) return null;
  const tag = der[offset]!;
  const first = der[offset + 1]!;
  let start = offset + 2;
  let length = first;
  if (first >= 0x80) {
    const lengthBytes = first & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || start + lengthBytes > limit) return null;
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + der[start + i]!;
    start += lengthBytes;
  }
  const end = start + length;
  return end > limit ? null : { tag, start, end };
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
