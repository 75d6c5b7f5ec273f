//! TLS to PostgreSQL, with rustls (its `ring` provider: pure Rust and C, no cmake): what
//! a URL's `sslmode` and `sslrootcert` ask (see [`TlsOptions`]), done as libpq does it.
//!
//! | `sslmode`            | encrypted | certificate checked                                 |
//! |----------------------|-----------|-----------------------------------------------------|
//! | `disable`            | no        |                                                     |
//! | `allow`, `prefer`    | no        | (libpq would try TLS first with `prefer`)           |
//! | `require`            | yes       | not, unless a root certificate file is there: chain |
//! | `verify-ca`          | yes       | chain, up to the root certificates                  |
//! | `verify-full`        | yes       | chain, and that it names the host                   |
//!
//! The root certificates are `sslrootcert=FILE`, else `~/.postgresql/root.crt` when it
//! exists, else (for `verify-full` only) the system's trusted roots; `sslrootcert=system`
//! asks for those. libpq refuses `verify-full` without a root certificate file; the
//! system's roots are what a database with a public certificate needs, and with the host
//! name checked they are safe. `verify-ca` has no such fallback: any public certificate
//! would pass it.

use crate::store::location::{RootCert, SslMode, TlsOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where libpq looks for root certificates when the URL names none, under the home
/// directory.
const DEFAULT_ROOT_CERT: &str = ".postgresql/root.crt";

/// A store's TLS: the connector its connections use, and what it checks.
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) connector: MakeRustlsConnect,
    mode: SslMode,
    check: Check,
}

/// What is checked of the server's certificate.
#[derive(Clone)]
enum Check {
    Nothing,
    /// Its chain, up to the root certificates of `roots`.
    Chain {
        roots: String,
    },
    /// Its chain, and that it names the host.
    ChainAndName {
        roots: String,
    },
}

impl Tls {
    /// The TLS that `options` ask for, `None` for none; `home` is where `~` is. Root
    /// certificates are read now, so that a missing or bad file fails the open.
    pub(super) fn new(options: &TlsOptions, home: Option<&Path>) -> Result<Option<Tls>, String> {
        if !options.mode.needs_tls() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let default_file = home.map(|home| home.join(DEFAULT_ROOT_CERT)).filter(|f| f.exists());
        let file = match &options.root_cert {
            RootCert::File(file) => Some(file.clone()),
            RootCert::Default => default_file,
            RootCert::System => None,
        };
        let roots = match (&file, &options.root_cert, options.mode) {
            (Some(file), _, _) => Some((read_roots(file)?, file.display().to_string())),
            (None, RootCert::System, _) | (None, _, SslMode::VerifyFull) => {
                Some((system_roots()?, "the system's trusted roots".to_owned()))
            }
            (None, _, SslMode::VerifyCa) => {
                return Err(format!(
                    "sslmode=verify-ca needs root certificates: name a PEM file with \
                     sslrootcert=PATH or put it in ~/{DEFAULT_ROOT_CERT} (the system's roots \
                     go with verify-full only: any public certificate would pass verify-ca)"
                ))
            }
            (None, _, _) => None,
        };
        let (verifier, check): (Arc<dyn ServerCertVerifier>, Check) = match roots {
            None => (Arc::new(AnyCertificate(provider.clone())), Check::Nothing),
            Some((store, roots)) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| format!("root certificates {roots}: {e}"))?;
                match options.mode {
                    SslMode::VerifyFull => (webpki, Check::ChainAndName { roots }),
                    _ => (Arc::new(ChainOnly(webpki)), Check::Chain { roots }),
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(Tls { connector: MakeRustlsConnect::new(config), mode: options.mode, check }))
    }

    /// What went wrong with TLS in a failed connection attempt, said plainly; `None` when
    /// it was not TLS.
    pub(super) fn explain(&self, e: &tokio_postgres::Error) -> Option<String> {
        let mode = self.mode;
        let cause = e.source()?;
        // tokio-postgres's own words when the server answers "no" to the TLS request.
        if cause.to_string() == "server does not support TLS" {
            return Some(format!(
                "the server does not accept TLS connections, and sslmode={mode} needs TLS: \
                 turn `ssl` on in the server's configuration, or connect without TLS \
                 (sslmode=prefer)"
            ));
        }
        // A failed handshake comes as tokio-rustls's io::Error around rustls's error.
        let tls_error = cause.downcast_ref::<std::io::Error>()?.get_ref()?;
        let Some(rustls::Error::InvalidCertificate(problem)) =
            tls_error.downcast_ref::<rustls::Error>()
        else {
            return Some(format!("TLS handshake failed: {tls_error}"));
        };
        let what = match &self.check {
            Check::Nothing => "nothing".to_owned(),
            Check::Chain { roots } => {
                format!("that it is signed by a root certificate of {roots}, not its host name")
            }
            Check::ChainAndName { roots } => format!(
                "that it is signed by a root certificate of {roots}, and that it names the host"
            ),
        };
        let failed = match problem {
            CertificateError::UnknownIssuer => {
                "the chain check failed: it is not signed by any of those root certificates"
                    .to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the host name check failed: {problem}")
            }
            CertificateError::BadSignature => {
                "the chain check failed: a signature in it is not valid".to_owned()
            }
            other => format!("the chain check failed: {other}"),
        };
        Some(format!(
            "the server's certificate does not verify ({failed}); sslmode={mode} checks {what}"
        ))
    }
}

/// The certificates of a PEM file, for roots.
fn read_roots(file: &Path) -> Result<RootCertStore, String> {
    let named = |what: String| format!("sslrootcert {}: {what}", file.display());
    let pem = std::fs::read(file).map_err(|e| named(format!("cannot read it: {e}")))?;
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert =
            cert.map_err(|e| named(format!("certificate {} is not valid PEM: {e}", n + 1)))?;
        roots
            .add(cert)
            .map_err(|e| named(format!("certificate {} is not a valid certificate: {e}", n + 1)))?;
    }
    if roots.is_empty() {
        return Err(named("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(roots)
}

/// The system's trusted roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the platform's store).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no trusted root certificates found on the system ({}); name a PEM file with \
             sslrootcert=PATH",
            if why.is_empty() { "the store is empty".to_owned() } else { why.join("; ") }
        ));
    }
    Ok(roots)
}

/// The home directory, where libpq's `~/.postgresql` is.
pub(super) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|home| !home.is_empty()).map(PathBuf::from)
}

/// `sslmode=require` without root certificates: any certificate is taken (the connection
/// is encrypted, and the server unauthenticated, as with libpq). The handshake's
/// signatures are still checked: they prove the server holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's checks but the host name's. webpki checks the chain (signatures,
/// validity dates, purpose) before the name, so a name mismatch means the rest held.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::exercise;
    use crate::store::{open, StoreLocation};
    use baton_pgtest::Server;

    /// The test server with TLS, or `None` (skipped) without PostgreSQL.
    fn tls_server() -> Option<&'static Server> {
        baton_pgtest::tls_server()
    }

    /// A new database of `server`, at `host`, with `options` (and a password, which the
    /// server's `trust` ignores and errors must not show).
    fn location(server: &Server, host: &str, options: &str) -> StoreLocation {
        let url = server.database();
        let (_, name) = url.rsplit_once('/').unwrap();
        let port = server.port();
        format!("postgresql://postgres:s3cret@{host}:{port}/{name}?{options}").parse().unwrap()
    }

    /// Opens the store at `location`, and runs the store's behaviour on it.
    fn works(location: &StoreLocation) {
        let opened = open(location, None).unwrap_or_else(|e| panic!("{location}: {e}"));
        exercise(opened.store.as_ref());
    }

    /// What opening the store at `location` fails with; it names the URL, not the password.
    fn fails(location: &StoreLocation) -> String {
        let Some(err) = open(location, None).err() else { panic!("{location} opened") };
        let err = err.to_string();
        assert!(err.contains(&location.to_string()), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        err
    }

    fn ca(server: &Server) -> String {
        server.tls().unwrap().ca.display().to_string()
    }

    fn other_ca(server: &Server) -> String {
        server.tls().unwrap().other_ca.display().to_string()
    }

    #[test]
    fn require_encrypts_without_checking_the_certificate() {
        let Some(server) = tls_server() else { return };
        works(&location(server, "127.0.0.1", "sslmode=require"));
        // The server takes no TCP connection without TLS: that one was encrypted.
        let err = fails(&location(server, "127.0.0.1", "sslmode=disable"));
        assert!(err.contains("connect failed") && err.contains("no encryption"), "{err}");
    }

    #[test]
    fn verify_full_checks_the_chain_and_the_host_name() {
        let Some(server) = tls_server() else { return };
        let ca = ca(server);
        works(&location(server, "localhost", &format!("sslmode=verify-full&sslrootcert={ca}")));
        works(&location(server, "127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")));
        // JDBC's ssl=true is verify-full.
        let url = format!(
            "jdbc:postgresql://localhost:{}/{}?user=postgres&ssl=true&sslrootcert={ca}",
            server.port(),
            server.database().rsplit_once('/').unwrap().1
        );
        works(&url.parse().unwrap());
        // A name the certificate does not hold, reached at 127.0.0.1: verify-ca takes it.
        let elsewhere = "sslrootcert=".to_owned() + &ca + "&hostaddr=127.0.0.1";
        let wrong_name =
            location(server, "db.invalid", &format!("sslmode=verify-full&{elsewhere}"));
        let err = fails(&wrong_name);
        assert!(
            err.contains("the server's certificate does not verify (the host name check failed"),
            "{err}"
        );
        assert!(err.contains("db.invalid") && err.contains("localhost"), "{err}");
        assert!(
            err.contains("sslmode=verify-full checks that it is signed by a root certificate of"),
            "{err}"
        );
        works(&location(server, "db.invalid", &format!("sslmode=verify-ca&{elsewhere}")));
    }

    #[test]
    fn a_certificate_of_another_ca_fails_clearly() {
        let Some(server) = tls_server() else { return };
        let other = other_ca(server);
        for mode in ["verify-full", "verify-ca", "require"] {
            // With a root certificate, require checks the chain, as libpq does.
            let err = fails(&location(
                server,
                "localhost",
                &format!("sslmode={mode}&sslrootcert={other}"),
            ));
            assert!(
                err.contains(&format!(
                    "connect failed: the server's certificate does not verify (the chain check \
                     failed: it is not signed by any of those root certificates); sslmode={mode} \
                     checks that it is signed by a root certificate of {other}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn tls_to_a_server_without_it_fails_clearly() {
        let Some(url) = baton_pgtest::database() else { return };
        let location: StoreLocation = format!("{url}?sslmode=require").parse().unwrap();
        let err = fails(&location);
        assert!(
            err.contains(
                "the server does not accept TLS connections, and sslmode=require needs TLS"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_plain_url_still_works() {
        let Some(url) = baton_pgtest::database() else { return };
        works(&url.parse().unwrap());
        let Some(url) = baton_pgtest::database() else { return };
        works(&format!("{url}?sslmode=prefer").parse().unwrap());
    }

    #[test]
    fn a_bad_root_certificate_file_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        for (file, said) in [(&missing, "cannot read it"), (&junk, "holds no PEM certificate")] {
            let text = format!(
                "postgresql://u:s3cret@db.invalid/b?sslmode=verify-full&sslrootcert={}",
                file.display()
            );
            let err = fails(&text.parse().unwrap());
            let expected = format!("configure TLS failed: sslrootcert {}: {said}", file.display());
            assert!(err.contains(&expected), "{err}");
        }
    }

    #[test]
    fn root_certificates_come_from_the_url_the_home_or_the_system() {
        let Some(server) = tls_server() else { return };
        let home = tempfile::tempdir().unwrap();
        let options = |mode, root_cert| TlsOptions { mode, root_cert };
        let checks = |options: &TlsOptions| match Tls::new(options, Some(home.path())) {
            Ok(Some(tls)) => Ok(tls.check),
            Ok(None) => Err("no TLS".to_owned()),
            Err(e) => Err(e),
        };
        assert!(matches!(
            checks(&options(SslMode::Require, RootCert::Default)),
            Ok(Check::Nothing)
        ));
        let err = checks(&options(SslMode::VerifyCa, RootCert::Default)).err().unwrap();
        assert!(err.starts_with("sslmode=verify-ca needs root certificates"), "{err}");
        assert!(checks(&options(SslMode::Prefer, RootCert::Default)).is_err_and(|e| e == "no TLS"));
        // ~/.postgresql/root.crt, as libpq: require then checks the chain too.
        let default = home.path().join(DEFAULT_ROOT_CERT);
        std::fs::create_dir_all(default.parent().unwrap()).unwrap();
        std::fs::copy(&server.tls().unwrap().ca, &default).unwrap();
        let roots = default.display().to_string();
        for mode in [SslMode::Require, SslMode::VerifyCa] {
            let check = checks(&options(mode, RootCert::Default));
            assert!(matches!(&check, Ok(Check::Chain { roots: r }) if *r == roots));
        }
        let check = checks(&options(SslMode::VerifyFull, RootCert::Default));
        assert!(matches!(&check, Ok(Check::ChainAndName { roots: r }) if *r == roots));
        // A file in the URL comes first.
        let other = other_ca(server);
        let check = checks(&options(SslMode::VerifyFull, RootCert::File(other.clone().into())));
        assert!(matches!(&check, Ok(Check::ChainAndName { roots: r }) if *r == other));
    }
}
