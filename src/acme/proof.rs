//! What an order is made of on this side: the certificate's key and request (ECDSA
//! P-256, every domain in the subject alternative names) and the self-signed
//! certificate a TLS-ALPN-01 validation expects (RFC 8737: the name, and the key
//! authorization's SHA-256 in a critical `id-pe-acmeIdentifier` extension), and the
//! identifier a CA's renewal information knows a certificate by (RFC 9773). Fails
//! only if OpenSSL does.

use base64::Engine;
use instant_acme::CertificateIdentifier;
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Extension, X509NameBuilder, X509Ref, X509ReqBuilder, X509};

use crate::tls::ChallengeCert;

/// `id-pe-acmeIdentifier` (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

fn failed(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> String {
    move |e| format!("{what}: {e}")
}

/// A new ECDSA P-256 key.
pub fn new_key() -> Result<PKey<Private>, String> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(failed("EC group"))?;
    let key = EcKey::generate(&group).map_err(failed("key"))?;
    PKey::from_ec_key(key).map_err(failed("key"))
}

/// A certificate request (DER) for `domains`, signed with `key`.
pub fn csr(domains: &[String], key: &PKey<Private>) -> Result<Vec<u8>, String> {
    let mut req = X509ReqBuilder::new().map_err(failed("request"))?;
    req.set_pubkey(key).map_err(failed("request"))?;
    let mut name = X509NameBuilder::new().map_err(failed("request"))?;
    name.append_entry_by_nid(Nid::COMMONNAME, &domains[0])
        .map_err(failed("request subject"))?;
    req.set_subject_name(&name.build())
        .map_err(failed("request subject"))?;
    let mut san = SubjectAlternativeName::new();
    for domain in domains {
        san.dns(domain);
    }
    let san = san
        .build(&req.x509v3_context(None))
        .map_err(failed("request names"))?;
    let mut extensions = Stack::new().map_err(failed("request"))?;
    extensions.push(san).map_err(failed("request"))?;
    req.add_extensions(&extensions)
        .map_err(failed("request names"))?;
    req.sign(key, MessageDigest::sha256())
        .map_err(failed("signing the request"))?;
    req.build().to_der().map_err(failed("request"))
}

/// The certificate that answers a TLS-ALPN-01 validation of `domain`, whose key
/// authorization has the SHA-256 `digest`.
pub fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<ChallengeCert, String> {
    let key = new_key()?;
    let mut cert = X509::builder().map_err(failed("challenge certificate"))?;
    cert.set_version(2)
        .map_err(failed("challenge certificate"))?;
    let mut serial = BigNum::new().map_err(failed("serial"))?;
    serial
        .rand(128, MsbOption::MAYBE_ZERO, false)
        .map_err(failed("serial"))?;
    let serial = Asn1Integer::from_bn(&serial).map_err(failed("serial"))?;
    cert.set_serial_number(&serial).map_err(failed("serial"))?;
    let mut name = X509NameBuilder::new().map_err(failed("challenge certificate"))?;
    name.append_entry_by_nid(Nid::COMMONNAME, domain)
        .map_err(failed("challenge certificate"))?;
    let name = name.build();
    cert.set_subject_name(&name).map_err(failed("subject"))?;
    cert.set_issuer_name(&name).map_err(failed("issuer"))?;
    let (from, until) = (
        Asn1Time::days_from_now(0).map_err(failed("validity"))?,
        Asn1Time::days_from_now(7).map_err(failed("validity"))?,
    );
    cert.set_not_before(&from).map_err(failed("validity"))?;
    cert.set_not_after(&until).map_err(failed("validity"))?;
    cert.set_pubkey(&key)
        .map_err(failed("challenge certificate"))?;
    let san = SubjectAlternativeName::new()
        .dns(domain)
        .build(&cert.x509v3_context(None, None))
        .map_err(failed("challenge certificate names"))?;
    cert.append_extension(san)
        .map_err(failed("challenge certificate names"))?;
    // The extension's value is the DER of an OCTET STRING holding the digest.
    let mut value = vec![0x04, u8::try_from(digest.len()).unwrap_or(0)];
    value.extend_from_slice(digest);
    let oid = Asn1Object::from_str(ACME_IDENTIFIER_OID).map_err(failed("acmeIdentifier"))?;
    let value = Asn1OctetString::new_from_bytes(&value).map_err(failed("acmeIdentifier"))?;
    let extension =
        X509Extension::new_from_der(&oid, true, &value).map_err(failed("acmeIdentifier"))?;
    cert.append_extension(extension)
        .map_err(failed("acmeIdentifier"))?;
    cert.sign(&key, MessageDigest::sha256())
        .map_err(failed("signing the challenge certificate"))?;
    Ok(ChallengeCert {
        cert: cert.build(),
        key,
    })
}

/// How a CA's renewal information names `leaf` (RFC 9773 §4.1): its authority key
/// identifier and the DER content of its serial number, each base64url. `None` for a
/// certificate without an authority key identifier (no CA's ARI can know it).
pub fn certificate_identifier(leaf: &X509Ref) -> Option<CertificateIdentifier<'static>> {
    let authority = leaf.authority_key_id()?.as_slice();
    let mut serial = leaf.serial_number().to_bn().ok()?.to_vec();
    // DER's INTEGER is two's complement: a leading 1 bit needs a zero byte before it.
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Some(CertificateIdentifier {
        authority_key_identifier: base64.encode(authority).into(),
        serial: base64.encode(serial).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Req;

    #[test]
    fn the_request_names_every_domain_and_is_signed_by_its_key() {
        let key = new_key().expect("key");
        let domains = vec!["a.example".to_owned(), "b.example".to_owned()];
        let der = csr(&domains, &key).expect("csr");
        let req = X509Req::from_der(&der).expect("a DER request");
        assert!(req.verify(&key).expect("verify"));
        let text = String::from_utf8(req.to_text().expect("text")).expect("utf-8");
        assert!(
            text.contains("DNS:a.example") && text.contains("DNS:b.example"),
            "{text}"
        );
    }

    #[test]
    fn the_certificate_identifier_is_rfc_9773s_example() {
        // RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
        // DE:01:C8:D4 and serial 0x87654321 are "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
        let key = new_key().expect("key");
        let mut cert = X509::builder().expect("builder");
        cert.set_version(2).expect("version");
        let serial = BigNum::from_hex_str("87654321").expect("serial");
        let serial = Asn1Integer::from_bn(&serial).expect("serial");
        cert.set_serial_number(&serial).expect("serial");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_nid(Nid::COMMONNAME, "ca").expect("cn");
        let name = name.build();
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(&name).expect("issuer");
        cert.set_pubkey(&key).expect("key");
        #[allow(deprecated)] // the only way to give the identifier's bytes
        let ski = X509Extension::new_nid(
            None,
            None,
            Nid::SUBJECT_KEY_IDENTIFIER,
            "69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4",
        )
        .expect("subject key identifier");
        cert.append_extension(ski).expect("ski");
        let aki = openssl::x509::extension::AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&cert.x509v3_context(None, None))
            .expect("authority key identifier");
        cert.append_extension(aki).expect("aki");
        cert.sign(&key, MessageDigest::sha256()).expect("sign");
        let id = certificate_identifier(&cert.build()).expect("an identifier");
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    #[test]
    fn a_certificate_without_an_authority_key_identifier_has_none() {
        let c = alpn_certificate("a.example", &[0; 32]).expect("certificate");
        assert!(certificate_identifier(&c.cert).is_none());
    }

    #[test]
    fn the_challenge_certificate_carries_the_digest_in_a_critical_extension() {
        let digest = [7u8; 32];
        let c = alpn_certificate("a.example", &digest).expect("certificate");
        let der = c.cert.to_der().expect("der");
        // OID 1.3.6.1.5.5.7.1.31, critical (BOOLEAN TRUE), then the OCTET STRING
        // wrapping the OCTET STRING of the digest.
        let mut expected = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f];
        expected.extend([0x01, 0x01, 0xff, 0x04, 0x22, 0x04, 0x20]);
        expected.extend(digest);
        assert!(
            der.windows(expected.len())
                .any(|w| w == expected.as_slice()),
            "the extension is not in the certificate"
        );
        let names: Vec<_> = (c.cert.subject_alt_names().expect("names").iter())
            .filter_map(|n| n.dnsname().map(str::to_owned))
            .collect();
        assert_eq!(names, ["a.example"]);
    }
}
