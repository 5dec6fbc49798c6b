//! TLS as curl and Python have it: which certificate authorities are trusted ([`Trust`]), the
//! client certificate for mutual TLS ([`ClientIdentity`]), what the server's certificate says
//! ([`TlsInfo`]), and TLS failures worded as Python's `ssl` module words them.
//!
//! ureq's own rustls connector takes its roots from a fixed list of choices and keeps the
//! handshake to itself, so fetchall has its own, [`TlsConnector`]: it builds one rustls
//! configuration per [`Fetcher`](super::Fetcher) (on the first `https` connection, so a list of
//! `http` URLs never reads the trust store), verifies with rustls's WebPKI verifier behind a
//! wrapper that tells a self-signed certificate from one of an unknown issuer (rustls reports
//! both as `UnknownIssuer`; OpenSSL, and so Python, tells them apart), and keeps each
//! connection's certificate facts on the connection.
//!
//! # Getting the facts of the connection a response came on
//!
//! ureq hands a request to a pooled or new connection out of sight of the caller, and its
//! response carries nothing of the transport. So the connector that wraps every connection
//! (`transport.rs`) keeps the facts of the outermost TLS layer ([`TlsTransport::info`]: the
//! target's, not an `https://` proxy's), and each request that goes out on the connection
//! records them with the rest of its facts (`facts.rs`); a kept-alive connection reports its own
//! each time it is reused, a plain `http` one none, and after redirects the record holds the
//! last hop's.
//!
//! # Python's words
//!
//! Recorded from Python 3.11.7 (OpenSSL 3.0.19) against `fetchall_serve::tls::TlsFront`:
//!
//! | Case | `str(exception)` printed by the Python example |
//! |---|---|
//! | unknown CA | `<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)>` |
//! | expired (trusted CA) | `... certificate verify failed: certificate has expired (_ssl.c:1006)>` |
//! | self-signed | `... certificate verify failed: self-signed certificate (_ssl.c:1006)>` |
//! | wrong name | `... certificate verify failed: Hostname mismatch, certificate is not valid for 'localhost'. (_ssl.c:1006)>` |
//! | wrong IP | `... certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'. (_ssl.c:1006)>` |
//! | client certificate required, none sent (TLS 1.3) | `[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)` |
//! | not TLS (a plain HTTP server) | `<urlopen error [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)>` |
//! | closed during the handshake | `<urlopen error [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)>` |
//!
//! fetchall prints the same without the `(_ssl.c:NNNN)` suffix, which names a line of Python's
//! own C source. The last line has no `<urlopen error ...>` around it because TLS 1.3 completes
//! the client's side of the handshake before the server checks the client's certificate: the
//! refusal arrives with the response, and urllib only wraps errors raised while it connects
//! and sends. fetchall wraps on the same rule.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::buffers::SocketBuffers;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, RootCertStore, SignatureScheme, StreamOwned,
};
use ureq::unversioned::transport::time::{Duration as TimeoutAfter, Instant as TimeoutAt};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport, TransportAdapter,
};

/// One day, for counting days left.
pub(super) const DAY: u64 = 86_400;

/// Which certificate authorities a [`Fetcher`](super::Fetcher) trusts for `https`.
///
/// | Variant | Trusted | Like |
/// |---|---|---|
/// | [`Trust::System`] (default) | the system's store: `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the OS's (on Linux the file and directory OpenSSL uses, `/etc/ssl/certs` on Debian, where `update-ca-certificates` installs; the keychain on macOS; the certificate store on Windows) | Python's `ssl.create_default_context()`, curl |
/// | [`Trust::Only`] | exactly the certificates of one PEM bundle | curl's `--cacert`, Python's `cafile=` |
/// | [`Trust::Bundled`] | the Mozilla roots compiled into fetchall | ureq's default |
///
/// A system store with no usable certificate (a minimal container without `ca-certificates`)
/// falls back to the bundled Mozilla roots, with a warning in the log (the CLI prints it on
/// stderr). [`SystemStore::load`] lets a program read the store itself, and see what it holds
/// and what went wrong reading it.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::{FetchOptions, Trust};
///
/// let mut options = FetchOptions::default();
/// assert!(matches!(options.trust, Trust::System));
/// let pem = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
/// assert!(Trust::from_pem(pem).is_err());
/// options.trust = Trust::Bundled;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Trust {
    /// The system's trust store, read when the first `https` connection is made.
    #[default]
    System,
    /// Exactly these certificate authorities ([`Trust::from_pem`], [`Trust::from_pem_file`]).
    Only(CaCertificates),
    /// The Mozilla root certificates compiled into fetchall (the `webpki-roots` crate).
    Bundled,
}

impl Trust {
    /// Trusts exactly the certificates of a PEM bundle: one or more
    /// `-----BEGIN CERTIFICATE-----` blocks; anything between them is ignored, as OpenSSL
    /// ignores it.
    ///
    /// # Errors
    ///
    /// When a block is not a certificate rustls can use, or there is none.
    pub fn from_pem(pem: &[u8]) -> Result<Trust, PemError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PemError::new(e.to_string()))?;
        CaCertificates::new(certs).map(Trust::Only)
    }

    /// [`Trust::from_pem`] on the contents of a file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, or as [`Trust::from_pem`].
    pub fn from_pem_file(path: &Path) -> Result<Trust, PemError> {
        let pem = std::fs::read(path).map_err(|e| PemError::new(e.to_string()))?;
        Trust::from_pem(&pem)
    }
}

/// Certificate authorities to trust, parsed from PEM: see [`Trust::Only`].
#[derive(Clone)]
pub struct CaCertificates {
    roots: Arc<RootCertStore>,
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificates")
            .field("count", &self.roots.len())
            .finish()
    }
}

impl CaCertificates {
    fn new(certs: Vec<CertificateDer<'static>>) -> Result<CaCertificates, PemError> {
        if certs.is_empty() {
            return Err(PemError::new("no certificate in it"));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| PemError::new(format!("a certificate rustls cannot use: {e}")))?;
        }
        Ok(CaCertificates {
            roots: Arc::new(roots),
        })
    }

    /// How many certificate authorities there are.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether there are none (never, for a value made from PEM).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// What the system's trust store held when read: see [`Trust::System`].
#[derive(Debug)]
pub struct SystemStore {
    roots: RootCertStore,
    problems: Vec<String>,
}

impl SystemStore {
    /// Reads the system's trust store, as [`Trust::System`] does: `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when either is set (OpenSSL's variables), else the platform's store.
    /// Certificates that cannot be used are skipped, and said so in [`SystemStore::problems`].
    pub fn load() -> SystemStore {
        let found = rustls_native_certs::load_native_certs();
        let mut problems: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        let mut roots = RootCertStore::empty();
        let (_, ignored) = roots.add_parsable_certificates(found.certs);
        if ignored > 0 {
            problems.push(format!("{ignored} certificates could not be used"));
        }
        SystemStore { roots, problems }
    }

    /// How many certificate authorities the store had.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether it had none: then [`SystemStore::into_trust`] gives the bundled roots.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// What went wrong reading it: unreadable files, unusable certificates.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The store as a [`Trust`]: [`Trust::Only`] its certificates, or [`Trust::Bundled`] when
    /// it had none.
    pub fn into_trust(self) -> Trust {
        if self.roots.is_empty() {
            Trust::Bundled
        } else {
            Trust::Only(CaCertificates {
                roots: Arc::new(self.roots),
            })
        }
    }
}

/// A client certificate and its private key, presented to servers that ask for one (mutual
/// TLS): curl's `--cert` and `--key`.
#[derive(Clone)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The certificate chain (the client's certificate first) from `cert_pem`, and the private
    /// key (PKCS #8, PKCS #1 or SEC1) from `key_pem`. The two may be the same text, as curl
    /// allows a `--cert` file that holds the key too.
    ///
    /// # Errors
    ///
    /// When either is missing or unreadable, or the key is of a type rustls cannot sign with,
    /// or does not belong to the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientIdentity, PemError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PemError::new(format!("the certificate: {e}")))?;
        if chain.is_empty() {
            return Err(PemError::new("no certificate in it"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| PemError::new(format!("the private key: {e}")))?;
        let key = CertifiedKey::from_der(chain, key, &provider())
            .map_err(|e| PemError::new(format!("the key and certificate: {e}")))?;
        Ok(ClientIdentity { key: Arc::new(key) })
    }

    /// [`ClientIdentity::from_pem`] on files: the key from `key`, or from the certificate's
    /// file when `key` is `None`.
    ///
    /// # Errors
    ///
    /// When a file cannot be read, or as [`ClientIdentity::from_pem`].
    pub fn from_pem_files(cert: &Path, key: Option<&Path>) -> Result<ClientIdentity, PemError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| PemError::new(format!("{}: {e}", path.display())))
        };
        let cert_pem = read(cert)?;
        let key_pem = match key {
            Some(key) => read(key)?,
            None => cert_pem.clone(),
        };
        ClientIdentity::from_pem(&cert_pem, &key_pem)
    }
}

/// Why PEM text could not be used as certificates or a key: `no certificate in it`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemError(String);

impl PemError {
    fn new(why: impl Into<String>) -> PemError {
        PemError(why.into())
    }
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PemError {}

/// What the TLS connection a response came on says: the protocol version and the server's
/// (leaf) certificate. In [`Page::tls`](super::Page::tls) for every `https` page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version, named as Python's `SSLSocket.version()` names it: `TLSv1.3`.
    pub version: String,
    /// The certificate's subject, as RFC 4514 writes a name: `CN=example.com, O=Example`.
    pub subject: String,
    /// The certificate's issuer, written the same way.
    pub issuer: String,
    /// The end of the certificate's validity (`notAfter`).
    pub not_after: SystemTime,
}

impl TlsInfo {
    /// Whole days from `now` until [`TlsInfo::not_after`], rounded down: 0 in the last day,
    /// negative once expired (only seen with [`FetchOptions::insecure`](super::FetchOptions::insecure)).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let secs = signed_secs(self.not_after) - signed_secs(now);
        secs.div_euclid(DAY as i64)
    }

    /// [`TlsInfo::not_after`] in RFC 3339, to the second, in UTC: `2026-12-06T21:28:43Z`.
    pub fn not_after_rfc3339(&self) -> String {
        let secs = signed_secs(self.not_after);
        let (days, rest) = (secs.div_euclid(DAY as i64), secs.rem_euclid(DAY as i64));
        let (y, m, d) = civil_date(days);
        let (h, min, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
    }

    /// The date part of [`TlsInfo::not_after_rfc3339`]: `2026-12-06`.
    pub fn not_after_date(&self) -> String {
        let mut date = self.not_after_rfc3339();
        date.truncate(10);
        date
    }

    /// The facts of a connection: its version and its first peer certificate.
    fn of(conn: &ClientConnection) -> Option<TlsInfo> {
        let leaf = conn.peer_certificates()?.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        let secs = cert.validity().not_after.timestamp();
        let not_after = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        Some(TlsInfo {
            version: version_name(conn.protocol_version()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after,
        })
    }
}

/// Seconds since the epoch, negative before it.
fn signed_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn version_name(version: Option<ProtocolVersion>) -> String {
    match version {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "unknown".into(),
    }
}

/// The TLS settings of a fetcher.
#[derive(Debug, Clone)]
pub(super) struct TlsSettings {
    pub(super) trust: Trust,
    pub(super) client: Option<ClientIdentity>,
    pub(super) insecure: bool,
}

/// ureq's place in the connector chain for TLS, with fetchall's verifier and certificate facts.
/// Clones share the configuration, built once.
#[derive(Debug, Clone)]
pub(super) struct TlsConnector {
    settings: Arc<TlsSettings>,
    config: Arc<OnceLock<Arc<ClientConfig>>>,
}

impl TlsConnector {
    pub(super) fn new(settings: TlsSettings) -> TlsConnector {
        TlsConnector {
            settings: Arc::new(settings),
            config: Arc::new(OnceLock::new()),
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        self.config
            .get_or_init(|| Arc::new(client_config(&self.settings)))
            .clone()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `settings`. Reads the system's store for [`Trust::System`].
fn client_config(settings: &TlsSettings) -> ClientConfig {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure {
        Arc::new(NoVerification(provider.clone()))
    } else {
        let roots = match &settings.trust {
            Trust::Only(certs) => certs.roots.clone(),
            Trust::Bundled => Arc::new(bundled_roots()),
            Trust::System => {
                let store = SystemStore::load();
                for problem in store.problems() {
                    tracing::warn!("reading the system's trust store: {problem}");
                }
                if store.is_empty() {
                    tracing::warn!(
                        "no certificate authority in the system's trust store: \
                         trusting the Mozilla roots built into fetchall"
                    );
                    Arc::new(bundled_roots())
                } else {
                    Arc::new(store.roots)
                }
            }
        };
        Arc::new(Verifier::new(roots, provider.clone()))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        // ring supports every version rustls does.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &settings.client {
        Some(client) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(client.key.clone())))
        }
        None => builder.with_no_client_auth(),
    }
}

fn bundled_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// rustls's WebPKI verifier, and what OpenSSL would call a self-signed certificate.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Verifier {
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            // Fails only for an empty root store, which `Trust` never gives.
            .unwrap_or_else(|_| {
                let bundled = Arc::new(bundled_roots());
                WebPkiServerVerifier::builder_with_provider(bundled, provider.clone())
                    .build()
                    .unwrap_or_else(|_| unreachable!("the bundled roots are not empty"))
            });
        Verifier { inner, provider }
    }
}

/// A certificate that signed itself, which rustls reports as `UnknownIssuer`: OpenSSL's
/// `self-signed certificate` (the server's own) or `self-signed certificate in certificate
/// chain` (one the server sent after its own). Carried as `CertificateError::Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelfSigned {
    Leaf,
    InChain,
}

impl fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelfSigned::Leaf => "self-signed certificate",
            SelfSigned::InChain => "self-signed certificate in certificate chain",
        })
    }
}

impl std::error::Error for SelfSigned {}

/// Whether a certificate names itself as its issuer, OpenSSL's test for self-signed.
fn is_self_signed(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, cert)| cert.issuer().as_raw() == cert.subject().as_raw())
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                let which = if is_self_signed(end_entity) {
                    Some(SelfSigned::Leaf)
                } else if intermediates.iter().any(is_self_signed) {
                    Some(SelfSigned::InChain)
                } else {
                    None
                };
                let error = match which {
                    Some(which) => CertificateError::Other(rustls::OtherError(Arc::new(which))),
                    None => CertificateError::UnknownIssuer,
                };
                Err(rustls::Error::InvalidCertificate(error))
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `--insecure`: any certificate for any name. The handshake's signatures are still checked,
/// which costs nothing and proves the server holds the key of the certificate it sent.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            // Nothing before it in the chain connected: there is nothing to wrap.
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls(
            "no host name to check the certificate against",
        ))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| ureq::Error::Tls("not a host name TLS can check"))?;
        let mut conn = ClientConnection::new(self.config(), name).map_err(|e| {
            ureq::Error::Other(Box::new(TlsFailed {
                error: Some(e),
                host: host.clone(),
                handshake: true,
            }))
        })?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        // The connect has used some of the time the details were made with.
        let mut timeout = details.timeout;
        if let (TimeoutAfter::Exact(left), TimeoutAt::Exact(then), TimeoutAt::Exact(now)) =
            (timeout.after, details.now, (details.current_time)())
        {
            let spent = now.saturating_duration_since(then);
            timeout.after = TimeoutAfter::Exact(left.saturating_sub(spent));
        }
        sock.set_timeout(timeout);
        conn.complete_io(&mut sock)
            .map_err(|e| tls_error(e, &host, true))?;
        let info = TlsInfo::of(&conn).map(Arc::new);
        // The plain socket's buffers, sized to use and reused (see `buffers.rs`), not ureq's
        // zero-filled ones: a TLS connection carries its page through these.
        let buffers = SocketBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
            info,
            host,
        })))
    }
}

/// A TLS connection, keeping the facts of its handshake.
pub(super) struct TlsTransport {
    buffers: SocketBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    info: Option<Arc<TlsInfo>>,
    host: String,
}

impl TlsTransport {
    /// The facts of this connection's handshake (see the [module documentation](self)).
    pub(super) fn info(&self) -> Option<Arc<TlsInfo>> {
        self.info.clone()
    }
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("host", &self.host)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(|e| tls_error(e, &self.host, false))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self
            .stream
            .read(input)
            .map_err(|e| tls_error(e, &self.host, false))?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// A socket error as ureq would have it, or a TLS failure as [`TlsFailed`].
fn tls_error(e: io::Error, host: &str, handshake: bool) -> ureq::Error {
    let is_rustls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if !is_rustls {
        if handshake && e.kind() == io::ErrorKind::UnexpectedEof {
            // The server closed the connection in the middle of the handshake.
            return ureq::Error::Other(Box::new(TlsFailed {
                error: None,
                host: host.to_owned(),
                handshake,
            }));
        }
        return ureq::Error::from(e);
    }
    match e
        .into_inner()
        .map(|inner| inner.downcast::<rustls::Error>())
    {
        Some(Ok(error)) => ureq::Error::Other(Box::new(TlsFailed {
            error: Some(*error),
            host: host.to_owned(),
            handshake,
        })),
        // Checked above.
        _ => ureq::Error::Tls("TLS failed"),
    }
}

/// What rustls said went wrong, with where: carried through ureq as `Error::Other`, and printed
/// as Python prints it (see the [module documentation](self)).
#[derive(Debug)]
pub(super) struct TlsFailed {
    /// `None`: the connection ended in the middle of the handshake.
    error: Option<rustls::Error>,
    /// The host the certificate was checked against.
    host: String,
    /// During the handshake (urllib's `<urlopen error ...>`), or after it.
    handshake: bool,
}

impl TlsFailed {
    /// The message after `generated an exception: `.
    pub(super) fn python_message(&self) -> String {
        let text = self.openssl_text();
        if self.handshake {
            format!("<urlopen error {text}>")
        } else {
            text
        }
    }

    /// OpenSSL's `[SSL: REASON] reason text`, or rustls's own words where OpenSSL has none.
    fn openssl_text(&self) -> String {
        let Some(error) = &self.error else {
            return "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"
                .into();
        };
        match error {
            rustls::Error::InvalidCertificate(e) => format!(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {}",
                verify_text(e, &self.host)
            ),
            rustls::Error::AlertReceived(alert) => match alert_reason(*alert) {
                Some((code, text)) => format!("[SSL: {code}] {text}"),
                None => format!("[SSL] received fatal alert: {alert:?}"),
            },
            rustls::Error::InvalidMessage(_) if self.handshake => {
                // What OpenSSL says of an answer that is not TLS at all: usually plain HTTP.
                "[SSL: WRONG_VERSION_NUMBER] wrong version number".into()
            }
            other => format!("[SSL] {}", super::classify::one_line(&other.to_string())),
        }
    }
}

impl fmt::Display for TlsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(error) => fmt::Display::fmt(error, f),
            None => f.write_str("the connection closed during the TLS handshake"),
        }
    }
}

impl std::error::Error for TlsFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_ref().map(|e| e as _)
    }
}

/// OpenSSL's `X509_verify_cert_error_string` for the certificate errors that have one; rustls's
/// words for the others.
fn verify_text(e: &CertificateError, host: &str) -> String {
    match e {
        CertificateError::UnknownIssuer => "unable to get local issuer certificate".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not yet valid".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            if host.parse::<IpAddr>().is_ok() {
                format!("IP address mismatch, certificate is not valid for '{host}'.")
            } else {
                format!("Hostname mismatch, certificate is not valid for '{host}'.")
            }
        }
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadSignature => "certificate signature failure".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "unsupported certificate purpose".into()
        }
        CertificateError::Other(other) => super::classify::one_line(&other.to_string()),
        other => {
            super::classify::one_line(&rustls::Error::InvalidCertificate(other.clone()).to_string())
        }
    }
}

/// OpenSSL's reason code and text for a fatal alert from the server.
fn alert_reason(alert: AlertDescription) -> Option<(&'static str, &'static str)> {
    Some(match alert {
        AlertDescription::CertificateRequired => (
            "TLSV13_ALERT_CERTIFICATE_REQUIRED",
            "tlsv13 alert certificate required",
        ),
        AlertDescription::HandshakeFailure => (
            "SSLV3_ALERT_HANDSHAKE_FAILURE",
            "sslv3 alert handshake failure",
        ),
        AlertDescription::BadCertificate => {
            ("SSLV3_ALERT_BAD_CERTIFICATE", "sslv3 alert bad certificate")
        }
        AlertDescription::UnsupportedCertificate => (
            "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
            "sslv3 alert unsupported certificate",
        ),
        AlertDescription::CertificateRevoked => (
            "SSLV3_ALERT_CERTIFICATE_REVOKED",
            "sslv3 alert certificate revoked",
        ),
        AlertDescription::CertificateExpired => (
            "SSLV3_ALERT_CERTIFICATE_EXPIRED",
            "sslv3 alert certificate expired",
        ),
        AlertDescription::CertificateUnknown => (
            "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
            "sslv3 alert certificate unknown",
        ),
        AlertDescription::UnknownCA => ("TLSV1_ALERT_UNKNOWN_CA", "tlsv1 alert unknown ca"),
        AlertDescription::AccessDenied => {
            ("TLSV1_ALERT_ACCESS_DENIED", "tlsv1 alert access denied")
        }
        AlertDescription::ProtocolVersion => (
            "TLSV1_ALERT_PROTOCOL_VERSION",
            "tlsv1 alert protocol version",
        ),
        AlertDescription::InternalError => {
            ("TLSV1_ALERT_INTERNAL_ERROR", "tlsv1 alert internal error")
        }
        AlertDescription::UnrecognisedName => {
            ("TLSV1_UNRECOGNIZED_NAME", "tlsv1 unrecognized name")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(not_after: SystemTime) -> TlsInfo {
        TlsInfo {
            version: "TLSv1.3".into(),
            subject: "CN=localhost".into(),
            issuer: "CN=test CA".into(),
            not_after,
        }
    }

    #[test]
    fn dates_are_rfc_3339_in_utc() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_825_600, "2000-02-29T12:00:00Z"),
            (1_796_592_523, "2026-12-06T21:28:43Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ] {
            let at = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(info(at).not_after_rfc3339(), text);
            assert_eq!(info(at).not_after_date(), text[..10]);
        }
        let before = UNIX_EPOCH - Duration::from_secs(DAY);
        assert_eq!(info(before).not_after_rfc3339(), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn days_left_round_down_and_go_negative() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000 * DAY);
        let at = |secs: i64| {
            let secs = 1_000 * DAY as i64 + secs;
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        };
        assert_eq!(info(at(5 * DAY as i64 + 3600)).days_left(now), 5);
        assert_eq!(info(at(DAY as i64 - 1)).days_left(now), 0);
        assert_eq!(info(at(-1)).days_left(now), -1);
        assert_eq!(info(at(-3 * DAY as i64)).days_left(now), -3);
    }

    fn failed(error: rustls::Error, host: &str, handshake: bool) -> String {
        TlsFailed {
            error: Some(error),
            host: host.into(),
            handshake,
        }
        .python_message()
    }

    #[test]
    fn certificate_errors_say_what_openssl_says() {
        let verify = |e: CertificateError, host: &str| {
            failed(rustls::Error::InvalidCertificate(e), host, true)
        };
        let prefix = "<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ";
        for (error, host, text) in [
            (
                CertificateError::UnknownIssuer,
                "a",
                "unable to get local issuer certificate",
            ),
            (CertificateError::Expired, "a", "certificate has expired"),
            (
                CertificateError::NotValidForName,
                "localhost",
                "Hostname mismatch, certificate is not valid for 'localhost'.",
            ),
            (
                CertificateError::NotValidForName,
                "::1",
                "IP address mismatch, certificate is not valid for '::1'.",
            ),
            (
                CertificateError::Other(rustls::OtherError(Arc::new(SelfSigned::Leaf))),
                "a",
                "self-signed certificate",
            ),
            (
                CertificateError::Other(rustls::OtherError(Arc::new(SelfSigned::InChain))),
                "a",
                "self-signed certificate in certificate chain",
            ),
        ] {
            assert_eq!(verify(error, host), format!("{prefix}{text}>"));
        }
        // No OpenSSL text: rustls's, plainly.
        let odd = verify(CertificateError::BadEncoding, "a");
        assert!(
            odd.starts_with(prefix) && odd.len() > prefix.len() + 2,
            "{odd}"
        );
    }

    #[test]
    fn alerts_after_the_handshake_are_not_urlopen_errors() {
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert_eq!(
            failed(required.clone(), "a", false),
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"
        );
        assert_eq!(
            failed(required, "a", true),
            "<urlopen error [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required>"
        );
        let eof = TlsFailed {
            error: None,
            host: "a".into(),
            handshake: true,
        };
        assert_eq!(
            eof.python_message(),
            "<urlopen error [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol>"
        );
        let odd = rustls::Error::AlertReceived(AlertDescription::NoRenegotiation);
        assert_eq!(
            failed(odd, "a", false),
            "[SSL] received fatal alert: NoRenegotiation"
        );
    }

    #[test]
    fn pem_that_holds_no_certificate_is_refused() {
        assert_eq!(
            Trust::from_pem(b"nothing here").map(|_| ()),
            Err(PemError::new("no certificate in it"))
        );
        let e = ClientIdentity::from_pem(b"", b"").expect_err("empty");
        assert_eq!(e.to_string(), "no certificate in it");
    }

    #[test]
    fn protocol_versions_are_named_as_python_names_them() {
        assert_eq!(version_name(Some(ProtocolVersion::TLSv1_3)), "TLSv1.3");
        assert_eq!(version_name(Some(ProtocolVersion::TLSv1_2)), "TLSv1.2");
        assert_eq!(version_name(None), "unknown");
    }
}
