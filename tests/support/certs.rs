//! A small test PKI built with OpenSSL at test time: a CA that issues server and
//! client leaf certificates (EC P-256), written out as PEM for tollgate and origins.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name, X509NameBuilder, X509};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A certificate authority: a self-signed CA certificate and its key.
pub struct Ca {
    pub cert: X509,
    key: PKey<Private>,
}

/// A certificate issued by a [`Ca`], its key, and the issuing CA's PEM.
pub struct Leaf {
    pub cert: X509,
    pub key: PKey<Private>,
    pub ca_pem: String,
}

/// What a leaf is for: the extended key usage and how SAN entries are read.
#[derive(Clone, Copy)]
enum Usage {
    Server,
    Client,
}

impl Ca {
    /// A self-signed CA valid from yesterday for 30 days.
    pub fn new(common_name: &str) -> Ca {
        let key = ec_key();
        let mut builder = base_builder(common_name, &key, -1, 30);
        builder
            .set_issuer_name(&cn_name(common_name))
            .expect("issuer");
        builder
            .append_extension(
                BasicConstraints::new()
                    .critical()
                    .ca()
                    .build()
                    .expect("basic constraints"),
            )
            .expect("append basic constraints");
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .expect("key usage"),
            )
            .expect("append key usage");
        let ski = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(None, None))
            .expect("subject key id");
        builder
            .append_extension(ski)
            .expect("append subject key id");
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(None, None))
            .expect("authority key id");
        builder
            .append_extension(aki)
            .expect("append authority key id");
        builder
            .sign(&key, MessageDigest::sha256())
            .expect("sign ca");
        Ca {
            cert: builder.build(),
            key,
        }
    }

    /// A TLS server leaf for `names` (CN = `names[0]`; IP-looking names become IP SANs),
    /// valid from yesterday for 30 days.
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf_valid(names, -1, 30)
    }

    /// A TLS client leaf with CN `common_name`; SAN entries containing `://` are URIs,
    /// others DNS names.
    pub fn client(&self, common_name: &str, sans: &[&str]) -> Leaf {
        self.issue(common_name, sans, Usage::Client, -1, 30)
    }

    /// A server leaf valid from `not_before_days` to `not_after_days` relative to now
    /// (negative = in the past): `(-10, -1)` is expired, `(-1, 5)` expires in 5 days.
    pub fn leaf_valid(&self, names: &[&str], not_before_days: i64, not_after_days: i64) -> Leaf {
        let cn = names
            .first()
            .expect("a server leaf needs at least one name");
        self.issue(cn, names, Usage::Server, not_before_days, not_after_days)
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        pem_string(&self.cert)
    }

    /// Writes `NAME.pem` (the CA certificate) into `dir` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, self.pem()).expect("write ca pem");
        path
    }

    fn issue(
        &self,
        common_name: &str,
        sans: &[&str],
        usage: Usage,
        not_before_days: i64,
        not_after_days: i64,
    ) -> Leaf {
        let key = ec_key();
        let mut builder = base_builder(common_name, &key, not_before_days, not_after_days);
        builder
            .set_issuer_name(self.cert.subject_name())
            .expect("issuer");
        builder
            .append_extension(BasicConstraints::new().build().expect("basic constraints"))
            .expect("append basic constraints");
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .expect("key usage"),
            )
            .expect("append key usage");
        let mut eku = ExtendedKeyUsage::new();
        match usage {
            Usage::Server => eku.server_auth(),
            Usage::Client => eku.client_auth(),
        };
        builder
            .append_extension(eku.build().expect("extended key usage"))
            .expect("append extended key usage");
        if !sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for entry in sans {
                match usage {
                    Usage::Server if entry.parse::<IpAddr>().is_ok() => san.ip(entry),
                    Usage::Client if entry.contains("://") => san.uri(entry),
                    _ => san.dns(entry),
                };
            }
            let san = san
                .build(&builder.x509v3_context(Some(&self.cert), None))
                .expect("subject alt name");
            builder
                .append_extension(san)
                .expect("append subject alt name");
        }
        let ski = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(Some(&self.cert), None))
            .expect("subject key id");
        builder
            .append_extension(ski)
            .expect("append subject key id");
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&builder.x509v3_context(Some(&self.cert), None))
            .expect("authority key id");
        builder
            .append_extension(aki)
            .expect("append authority key id");
        builder
            .sign(&self.key, MessageDigest::sha256())
            .expect("sign leaf");
        Leaf {
            cert: builder.build(),
            key,
            ca_pem: self.pem(),
        }
    }
}

impl Leaf {
    /// The leaf certificate alone as PEM.
    pub fn cert_pem(&self) -> String {
        pem_string(&self.cert)
    }

    /// The leaf followed by the issuing CA certificate, as PEM.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem(), self.ca_pem)
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        String::from_utf8(
            self.key
                .private_key_to_pem_pkcs8()
                .expect("key to pkcs8 pem"),
        )
        .expect("pem is utf-8")
    }

    /// Lowercase hex SHA-256 of the DER certificate, no separators.
    pub fn sha256(&self) -> String {
        let digest = self
            .cert
            .digest(MessageDigest::sha256())
            .expect("cert digest");
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Writes `NAME.pem` (the chain) and `NAME.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, self.chain_pem()).expect("write leaf pem");
        std::fs::write(&key_path, self.key_pem()).expect("write leaf key");
        (cert_path, key_path)
    }

    /// This leaf (with its chain) as a reqwest client identity.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pkcs8_pem(self.chain_pem().as_bytes(), self.key_pem().as_bytes())
            .expect("identity")
    }
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("p-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

/// A v3 certificate builder with a random serial, subject CN, public key and validity set.
fn base_builder(
    common_name: &str,
    key: &PKey<Private>,
    not_before_days: i64,
    not_after_days: i64,
) -> X509Builder {
    let mut builder = X509Builder::new().expect("x509 builder");
    builder.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("bignum");
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .expect("random serial");
    let serial = serial.to_asn1_integer().expect("serial");
    builder.set_serial_number(&serial).expect("set serial");
    builder
        .set_subject_name(&cn_name(common_name))
        .expect("subject");
    builder.set_pubkey(key).expect("pubkey");
    builder
        .set_not_before(&days_from_now(not_before_days))
        .expect("not before");
    builder
        .set_not_after(&days_from_now(not_after_days))
        .expect("not after");
    builder
}

fn cn_name(common_name: &str) -> X509Name {
    let mut name = X509NameBuilder::new().expect("name builder");
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .expect("common name");
    name.build()
}

fn days_from_now(days: i64) -> Asn1Time {
    if let Ok(days) = u32::try_from(days) {
        return Asn1Time::days_from_now(days).expect("asn1 time");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let now = i64::try_from(now).expect("time fits i64");
    Asn1Time::from_unix(now + days * 86_400).expect("asn1 time")
}

fn pem_string(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().expect("cert pem")).expect("pem is utf-8")
}
