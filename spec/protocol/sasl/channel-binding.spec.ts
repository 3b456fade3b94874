// RFC 5929 §4.1 tls-server-end-point from a certificate (RFC 4055 §3.1 for RSASSA-PSS), and the
// RFC 9266 exporter parameters.
// Fixtures: self-signed certificates made with OpenSSL 3.0; expected digests from `openssl dgst`.
// RSA certificates with other digests are made by node-forge, independently of OpenSSL.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import fc from "fast-check";
import forge from "node-forge";
import {
  CHANNEL_BINDING_TYPES,
  isChannelBindingType,
  TLS_EXPORTER_LABEL,
  TLS_EXPORTER_LENGTH,
  tlsServerEndPoint,
} from "../../../protocol/sasl/index.ts";
import { signatureAlgorithmOid } from "../../../protocol/sasl/channel-binding.ts";

const der = (b64: string) => Buffer.from(b64, "base64");
const ECDSA_P256_SHA256 = der("MIIBhDCCASmgAwIBAgIUDLTTq0Kej/wCbPgVHZ2JuaJgwtcwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI3MTg1MDEyWhgPMjEyNjExMDMxODUwMTJaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpyw86C417Z56NS5CUv/y9obcTN9Gaeg+7sMplcsIussXpnwFb/2SvebgakCtI+tG8wvliJrX56M2wusZhGf2yaNTMFEwHQYDVR0OBBYEFP+KeoPYeiYmQXzwJ69qg7b7RiNWMB8GA1UdIwQYMBaAFP+KeoPYeiYmQXzwJ69qg7b7RiNWMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAMWRmU9dyc4hfNTEkqEHirCIbzKfL/LVouTkeqjzuYI7AiEAx+QmJ7Atzd2IsJKZrKEUi7lkTWm71khqvVW4GWbSiYU=");
const ECDSA_P384_SHA384 = der("MIIBwDCCAUagAwIBAgIUQPssvWYpKeSUMRUH03tBz1xv4g4wCgYIKoZIzj0EAwMwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI3MTg1MDEyWhgPMjEyNjExMDMxODUwMTJaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEvZ8+ZL8vguw7CWGtNYsZO5jRiLp89FqiDPm/aM2sRGbTWya9HPS7ccOUt4WMB+5Kzjy1Utw+O0Ko4ub+WMKJai5D2EDS+/hQ05+Hh8Cg4vnAG7RL/stIcWm0MLBcq5SWo1MwUTAdBgNVHQ4EFgQUIa3smp6hhngxNqkaPYvP08c0FOEwHwYDVR0jBBgwFoAUIa3smp6hhngxNqkaPYvP08c0FOEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAwNoADBlAjABmSA7M28N14kDaAd53jUNd9McT+yEGiTec5r+dkomJ9cYnIN1n1n4I1bdWZ4N5FACMQCi0wNpVTrALiAbfjr5tNCsLp76kuHLxONiCLi945KjeNRWMnjJkRhd0WKYjPRws8M=");
const RSA_SHA1 = der("MIICCjCCAXOgAwIBAgIURX9NqFF0lq3lltL5BKuWL/rI2nMwDQYJKoZIhvcNAQEFBQAwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI3MTg1MDEyWhgPMjEyNjExMDMxODUwMTJaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDMfnhRW6Vok72Fq8ls1SrTSnMFQwLqyONX+6ljT3ge4ceX1eEAzYJKx0oF7BsgkWWkM+MtVpZPGC9PrEBWO5QcwvwnlOguYKW/JZXSo4lw/tWjz93KUiKWlHu9Xz3fszbC1i0D/NCnSDlyVKmaMNjNqwMFEh1twI6jFengs2RpsQIDAQABo1MwUTAdBgNVHQ4EFgQUhREXamRR9fo0HJk7eMT2c8exYKowHwYDVR0jBBgwFoAUhREXamRR9fo0HJk7eMT2c8exYKowDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQUFAAOBgQCiVnX0Wudm7jgfjf3sos5JDRbXfxCGzMg2XwVSR0x5AYEdonMx+DgoXWyZpkruExfSkfmWm3ZhZaY75AIcCVkztRITrkZ+xgEevXdAnKqmb1gu1WIoXU0FpIC7f32xdlVH/fFLHR1dez8cozdUGkwRP7M8mMKF3xIP0CS5asXe9g==");
const ED25519 = der("MIIBQjCB9aADAgECAhQ170J8NIJUpYyM49gWKvqyLCjN6DAFBgMrZXAwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI3MTg1MDEyWhgPMjEyNjExMDMxODUwMTJaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMCowBQYDK2VwAyEAPNf0ybHUzBFISvTbCmNWI+rdJorwpMnrsdPTSd14IvujUzBRMB0GA1UdDgQWBBT5/TlspJ8jidX5QPsgW0hkkZeV/TAfBgNVHSMEGDAWgBT5/TlspJ8jidX5QPsgW0hkkZeV/TAPBgNVHRMBAf8EBTADAQH/MAUGAytlcANBAD/vP0KlBNRUd2bCR89b1ibMRuFgxkOzwACc5QhKp9aY7SFIymbFi+OVpTMAyKTl5WIcLRBhxaWHLZam+oaeUQk=");
// RSASSA-PSS, hash and MGF1 hash both SHA-384.
const RSA_PSS_SHA384 = der("MIICcDCCAaWgAwIBAgIUMsVlf6DDqPd58uhT9fvL8v5f5M4wQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgIFAKIDAgFOMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMCAXDTI2MTEyNzE5MDgwNFoYDzIxMjYxMTAzMTkwODA0WjAWMRQwEgYDVQQDDAtleGFtcGxlLmNvbTCBnTALBgkqhkiG9w0BAQoDgY0AMIGJAoGBANwfXZsDe/WBn0XsNTvzVs2BL7EZ/boCAbGGruQ37Y+eJ04SxPZVmL+e2DqO8sbQR91lNvNl2x8Ti/KwiYi2GOLWi+DyJ8hpUuBhVoxDw1A78vMC8CJH6fOLRUbIKcWuGSQL1pAov/2vHxHITDS/RP6nrpYdAN+Uvx3sbUYlfU+VAgMBAAGjUzBRMB0GA1UdDgQWBBQg4zwL8zNksDZwhhA7G7ZFAOZw6zAfBgNVHSMEGDAWgBQg4zwL8zNksDZwhhA7G7ZFAOZw6zAPBgNVHRMBAf8EBTADAQH/MEEGCSqGSIb3DQEBCjA0oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBTgOBgQBk4YtI425xBfcSevoPTaxIJMIxOOs/Q8hj6o+23VG4dkBveNw/mEOZaI83lOJzHB+MkCAjlCey19rW9pf0RlIEkeF929qAUUgsIjOszr0z9sOq/TIhKF6E2TGeYQhUH+FDaurET/pOKmIp2bR3SyOxkMpSZNmGIZAdnLuYxpVokg==");
// RSASSA-PSS with empty parameters: every field at its default, SHA-1 and MGF1 with SHA-1.
const RSA_PSS_DEFAULTS = der("MIICCDCCAXGgAwIBAgIUPz7qUoz6OQ881Dqx/6SyPVCU90wwDQYJKoZIhvcNAQEKMAAwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wIBcNMjYxMTI3MTkwODA0WhgPMjEyNjExMDMxOTA4MDRaMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMIGdMAsGCSqGSIb3DQEBCgOBjQAwgYkCgYEA3qgP/isqDKQ8/pH6Gq3Yjt293rcoA+ZGs5mvoK2RbguC8aucNk/2khFq2i+rp322pFXJdATkwEL8JbUn1mjz0JY/N8uQ5XoaSWl7H+8qY5AbwBSs+HjwZ/e4c+Jden9Hd2xl/17hZ4/b/wnNA1XPoFCK2UuV3MZjowoO0u/oIUUCAwEAAaNTMFEwHQYDVR0OBBYEFMYut3dB0ZxCFDeNouMNWHaJPlFUMB8GA1UdIwQYMBaAFMYut3dB0ZxCFDeNouMNWHaJPlFUMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQEKMAADgYEALuuhA+BZ0hdV3LY2/snHCdckAjDigloQKFGmyDqCyvuM4RWS1A2Iza4zEAbu4oFKYrSM0DpnZ/LHc9fn2jCzSXWqnFhwyVpmPiBYZSYggcLuG9m30WuY0AjIdOVJiGNc92LS0P8g11VJFWnnvWj+gJ3nYcCrkH98UZYylWD7LSo=");
// RSASSA-PSS hashing with SHA-256 but masking with the default MGF1 over SHA-1.
const RSA_PSS_SHA256_MGF1_SHA1 = der("MIICNDCCAYegAwIBAgIULuTJabk5DnxnfgYWesnfYBGvJMIwIwYJKoZIhvcNAQEKMBagDzANBglghkgBZQMEAgEFAKIDAgFeMBYxFDASBgNVBAMMC2V4YW1wbGUuY29tMCAXDTI2MTEyNzE5MDgwNVoYDzIxMjYxMTAzMTkwODA1WjAWMRQwEgYDVQQDDAtleGFtcGxlLmNvbTCBnTALBgkqhkiG9w0BAQoDgY0AMIGJAoGBALBrIUDE7gH8mpSEYRTVQLgsmcIfDSOWaoiC4+YV8N+RO9nlGEeBu58wi5beNxGWcDimz01jlKtv56BqcfmRtFtknNNncCs3E/7fVOp+n4NvcvTnC7+mW9WldiCBVwJfFfMlABzC8zqkPBtyMIc52GkKqGOgwZmTYsPDfYSX7SnfAgMBAAGjUzBRMB0GA1UdDgQWBBT+vKUu3IM5aP7fFJT/VyqZq7FiwzAfBgNVHSMEGDAWgBT+vKUu3IM5aP7fFJT/VyqZq7FiwzAPBgNVHRMBAf8EBTADAQH/MCMGCSqGSIb3DQEBCjAWoA8wDQYJYIZIAWUDBAIBBQCiAwIBXgOBgQB6c9tm+ViC8ZLMKTDJoUHxR8Ud0JwTwOeKNDZ6EaP45tU2qD6GWPmqUvVkirPf5gcq+EUc4cn0K5pmsZ79RzqeOQEmtpVEInp0l5edJIJMu+WGEBsvtTt1aqVUzpiSPMg47DuOBJqEl3gFzZCTJ0bTlWwc5MPrOov1SvfpkPFcpA==");

/** A self-signed RSA certificate signed with `digest`, as DER. */
function forgeCertificate(digest: forge.md.MessageDigest): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string);
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date();
  cert.validity.notAfter = new Date(Date.now() + 24 * 60 * 60 * 1000);
  cert.setSubject([{ name: "commonName", value: "example.com" }]);
  cert.setIssuer([{ name: "commonName", value: "example.com" }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }) as string), digest);
  return new X509Certificate(forge.pki.certificateToPem(cert)).raw;
}

describe("tls-server-end-point (RFC 5929 §4.1)", () => {
  test("ecdsa-with-SHA256: SHA-256 of the certificate", () => {
    assert.equal(tlsServerEndPoint(ECDSA_P256_SHA256)?.toString("hex"), "53542219c8242fc4bd6d4807837cb0ea6ffd28b45e7ed427b263ea7ba45479db");
  });
  test("ecdsa-with-SHA384: SHA-384 of the certificate", () => {
    assert.equal(
      tlsServerEndPoint(ECDSA_P384_SHA384)?.toString("hex"),
      "bd274013bc99fbde11aae12950b7f8f19c8758ec182a7079965ff2b339cdc86241d330daafc606a38c3952339b828aaf",
    );
  });
  test("sha1WithRSAEncryption: SHA-1 is upgraded to SHA-256", () => {
    assert.equal(tlsServerEndPoint(RSA_SHA1)?.toString("hex"), "f71f01d3251a47407f52c69b99431f3bdc5c297573ec7544d87b4e52b3ce2b90");
  });
  for (const [name, digest, hash] of [
    ["MD5", () => forge.md.md5.create(), "sha256"],
    ["SHA-256", () => forge.md.sha256.create(), "sha256"],
    ["SHA-384", () => forge.md.sha384.create(), "sha384"],
    ["SHA-512", () => forge.md.sha512.create(), "sha512"],
  ] as const) {
    test(`an RSA certificate signed with ${name} is hashed with ${hash}`, () => {
      const certificate = forgeCertificate(digest());
      assert.deepEqual(tlsServerEndPoint(certificate), createHash(hash).update(certificate).digest());
    });
  }
  test("RSASSA-PSS uses the hash named in its parameters", () => {
    assert.equal(signatureAlgorithmOid(RSA_PSS_SHA384), "1.2.840.113549.1.1.10");
    assert.equal(
      tlsServerEndPoint(RSA_PSS_SHA384)?.toString("hex"),
      "11fc8f9728f2aaf5310a1261e836f5494ff076143b715717216e2af97e1e84549098b4fcf6a5aa12027e48262e324b48",
    );
  });
  test("RSASSA-PSS with default parameters means SHA-1, upgraded to SHA-256", () => {
    assert.equal(tlsServerEndPoint(RSA_PSS_DEFAULTS)?.toString("hex"), "374561cd37b88df98267bbe732f2a92a16833df71380c0ab3f4c7312b00de19c");
  });
  test("RSASSA-PSS whose MGF1 hash differs from its message hash uses two hashes, so the binding is undefined", () => {
    assert.equal(tlsServerEndPoint(RSA_PSS_SHA256_MGF1_SHA1), null);
  });
  test("Ed25519 has no single hash, so the binding is undefined", () => {
    assert.equal(signatureAlgorithmOid(ED25519), "1.3.101.112");
    assert.equal(tlsServerEndPoint(ED25519), null);
  });
  test("reads the signature algorithm OID, including multi-byte arcs", () => {
    assert.equal(signatureAlgorithmOid(ECDSA_P256_SHA256), "1.2.840.10045.4.3.2");
    assert.equal(signatureAlgorithmOid(RSA_SHA1), "1.2.840.113549.1.1.5");
  });
  test("truncated, padded or empty input gives null instead of throwing", () => {
    for (const certificate of [ECDSA_P256_SHA256, RSA_PSS_SHA384]) {
      for (let length = 0; length < certificate.length; length += 7) {
        assert.equal(tlsServerEndPoint(certificate.subarray(0, length)), null);
      }
      assert.equal(tlsServerEndPoint(Buffer.concat([certificate, Buffer.from([0])])), null);
    }
  });
  test("property: a corrupted byte anywhere gives null or a digest, never a throw", () => {
    fc.assert(
      fc.property(fc.nat({ max: RSA_PSS_SHA384.length - 1 }), fc.integer({ min: 0, max: 255 }), (index, value) => {
        const corrupted = Buffer.from(RSA_PSS_SHA384);
        corrupted[index] = value;
        const endPoint = tlsServerEndPoint(corrupted);
        assert.ok(endPoint === null || [28, 32, 48, 64].includes(endPoint.length));
      }),
    );
  });
});

describe("channel binding types", () => {
  test("tls-exporter first, then tls-server-end-point; tls-unique is not implemented", () => {
    assert.deepEqual(CHANNEL_BINDING_TYPES, ["tls-exporter", "tls-server-end-point"]);
    assert.equal(isChannelBindingType("tls-unique"), false);
    assert.equal(isChannelBindingType("tls-exporter"), true);
  });
  test("RFC 9266 §2 exporter parameters", () => {
    assert.equal(TLS_EXPORTER_LABEL, "EXPORTER-Channel-Binding");
    assert.equal(TLS_EXPORTER_LENGTH, 32);
  });
});
