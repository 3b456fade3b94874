// RFC 5929 §4.1 tls-server-end-point from a certificate, and the RFC 9266 exporter parameters.
// Fixtures: self-signed certificates made with OpenSSL 3.0; expected digests from `openssl dgst`.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
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
  test("Ed25519 has no single hash, so the binding is undefined", () => {
    assert.equal(signatureAlgorithmOid(ED25519), "1.3.101.112");
    assert.equal(tlsServerEndPoint(ED25519), null);
  });
  test("reads the signature algorithm OID, including multi-byte arcs", () => {
    assert.equal(signatureAlgorithmOid(ECDSA_P256_SHA256), "1.2.840.10045.4.3.2");
    assert.equal(signatureAlgorithmOid(RSA_SHA1), "1.2.840.113549.1.1.5");
  });
  test("truncated, padded or empty input gives null instead of throwing", () => {
    for (let length = 0; length < ECDSA_P256_SHA256.length; length += 7) {
      assert.equal(tlsServerEndPoint(ECDSA_P256_SHA256.subarray(0, length)), null);
    }
    assert.equal(tlsServerEndPoint(Buffer.concat([ECDSA_P256_SHA256, Buffer.from([0])])), null);
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
