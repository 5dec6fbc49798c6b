//! TLS for tests: a throw-away PKI made at run time ([`Ca`], [`Identity`], [`self_signed`],
//! [`PemDir`] for the tests that need files) and [`TlsFront`], a TLS server on 127.0.0.1 that
//! relays the plaintext to a plain [`Server`](crate::Server), so that every route of the plain
//! server can be fetched over `https`.
//!
//! Nothing here is meant to be secure: keys are made fresh for each run and thrown away, and the
//! certificates are only ever trusted by the test that made them.
//!
//! # Examples
//!
//! ```
//! use fetchall_serve::Server;
//! use fetchall_serve::tls::{Ca, LOCALHOST, TlsFront};
//!
//! let server = Server::start()?;
//! let ca = Ca::new("fetchall test CA");
//! let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST))?;
//! assert_eq!(front.url("/ok"), format!("https://127.0.0.1:{}/ok", front.addr().port()));
//! assert_eq!(front.url_for("localhost", "/ok"), format!("https://localhost:{}/ok", front.addr().port()));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

/// The names a certificate for the loopback server is made for: `localhost` and `127.0.0.1`.
pub const LOCALHOST: [&str; 2] = ["localhost", "127.0.0.1"];

/// One day.
const DAY: Duration = Duration::from_secs(86_400);

/// How long dropping a [`TlsFront`] waits for its threads before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The size of each relay buffer.
const RELAY_BUFFER: usize = 16 * 1024;

/// A certificate authority made for one test run: a self-signed CA certificate and its key.
///
/// # Panics
///
/// Every method that makes a certificate panics if the key or the certificate cannot be made,
/// which only a bug (or an out-of-range date) can cause: this is test code.
pub struct Ca {
    name: String,
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("name", &self.name).finish()
    }
}

impl Ca {
    /// A new CA whose subject is `CN=<name>`, valid from a day ago for ten years.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        set_validity(&mut params, now - DAY, now + 3650 * DAY);
        let key = KeyPair::generate().expect("generate the CA's key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca {
            name: name.to_owned(),
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's subject common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM-encoded: what a client is told to trust.
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// A server certificate for `names` (host names or IP addresses; the first is also the
    /// subject's common name), valid from a day ago for a year.
    pub fn leaf(&self, names: &[&str]) -> Identity {
        let now = SystemTime::now();
        self.leaf_valid(names, now - DAY, now + 365 * DAY)
    }

    /// A server certificate for `names` that expired yesterday (valid from 30 days ago).
    pub fn expired_leaf(&self, names: &[&str]) -> Identity {
        let now = SystemTime::now();
        self.leaf_valid(names, now - 30 * DAY, now - DAY)
    }

    /// A server certificate for `names` that expires `days` days and one hour from now, so that
    /// a test sees exactly `days` whole days left however long it takes.
    pub fn leaf_expiring_in(&self, names: &[&str], days: u32) -> Identity {
        let now = SystemTime::now();
        let left = DAY * days + Duration::from_secs(3600);
        self.leaf_valid(names, now - DAY, now + left)
    }

    /// A server certificate for `names`, valid from `not_before` to `not_after` (to the second).
    pub fn leaf_valid(
        &self,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Identity {
        let mut params = leaf_params(names, ExtendedKeyUsagePurpose::ServerAuth);
        set_validity(&mut params, not_before, not_after);
        self.sign(&params, not_after)
    }

    /// A client certificate whose subject is `CN=<name>`, for mutual TLS, valid from a day ago
    /// for a year.
    pub fn client_cert(&self, name: &str) -> Identity {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = SystemTime::now();
        let not_after = now + 365 * DAY;
        set_validity(&mut params, now - DAY, not_after);
        self.sign(&params, not_after)
    }

    fn sign(&self, params: &CertificateParams, not_after: SystemTime) -> Identity {
        let key = KeyPair::generate().expect("generate a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a certificate");
        Identity::new(cert.der().clone(), cert.pem(), &key, not_after)
    }
}

/// A self-signed server certificate for `names`, issued by nobody else, valid from a day ago for
/// a year: what a client reports as `self-signed certificate`.
///
/// # Panics
///
/// If the key or the certificate cannot be made (a bug).
pub fn self_signed(names: &[&str]) -> Identity {
    let mut params = leaf_params(names, ExtendedKeyUsagePurpose::ServerAuth);
    let now = SystemTime::now();
    let not_after = now + 365 * DAY;
    set_validity(&mut params, now - DAY, not_after);
    let key = KeyPair::generate().expect("generate a key");
    let cert = params.self_signed(&key).expect("self-sign");
    Identity::new(cert.der().clone(), cert.pem(), &key, not_after)
}

/// A certificate and its private key: what a server (or a client, for mutual TLS) presents.
pub struct Identity {
    der: CertificateDer<'static>,
    cert_pem: String,
    key: PrivatePkcs8KeyDer<'static>,
    key_pem: String,
    not_after: SystemTime,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the key.
        f.debug_struct("Identity")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Identity {
    fn new(
        der: CertificateDer<'static>,
        cert_pem: String,
        key: &KeyPair,
        not_after: SystemTime,
    ) -> Identity {
        // Certificates hold whole seconds.
        let secs = not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Identity {
            der,
            cert_pem,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            key_pem: key.serialize_pem(),
            not_after: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The private key, PEM-encoded (PKCS #8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The end of the certificate's validity (`notAfter`).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn leaf_params(names: &[&str], usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(sans).expect("valid subject alternative names");
    params.distinguished_name = common_name(names.first().copied().unwrap_or("unnamed"));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params
}

fn set_validity(params: &mut CertificateParams, not_before: SystemTime, not_after: SystemTime) {
    let date = |t: SystemTime| {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let secs = i64::try_from(secs).expect("a date before the year 292 billion");
        time::OffsetDateTime::from_unix_timestamp(secs).expect("a date rcgen can write")
    };
    params.not_before = date(not_before);
    params.not_after = date(not_after);
}

/// A fresh directory under the system's temporary directory, removed with everything in it
/// when dropped: for the tests that hand certificates and keys to a program as files.
///
/// # Examples
///
/// ```
/// use fetchall_serve::tls::PemDir;
///
/// let dir = PemDir::new()?;
/// let path = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n...")?;
/// assert!(path.starts_with(dir.path()) && path.exists());
/// let kept = dir.path().to_owned();
/// drop(dir);
/// assert!(!kept.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PemDir {
    path: PathBuf,
}

impl PemDir {
    /// Makes the directory.
    ///
    /// # Errors
    ///
    /// When it cannot be created.
    pub fn new() -> io::Result<PemDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        // A name taken by a leftover of an earlier run is skipped; a few tries are plenty.
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("fetchall-tls-{}-{nanos}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(PemDir { path }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free directory name")))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to the file `name` in the directory and returns its path.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write(&self, name: &str, contents: &str) -> io::Result<PathBuf> {
        let path = self.path.join(name);
        fs::write(&path, contents)?;
        Ok(path)
    }
}

/// What a TLS test needs: a CA for servers, one for clients, and a directory for their files.
///
/// # Examples
///
/// ```
/// use fetchall_serve::tls::Pki;
///
/// let pki = Pki::new();
/// let ca = pki.ca_file();
/// assert!(std::fs::read_to_string(&ca)?.starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Pki {
    /// The CA that signs the servers' certificates.
    pub ca: Ca,
    /// The CA that signs the clients' certificates.
    pub client_ca: Ca,
    /// Where [`Pki::ca_file`] and [`Pki::file`] write.
    pub dir: PemDir,
}

impl Pki {
    /// Two new CAs and an empty directory.
    ///
    /// # Panics
    ///
    /// When the directory cannot be made.
    pub fn new() -> Pki {
        Pki {
            ca: Ca::new("fetchall test CA"),
            client_ca: Ca::new("fetchall test client CA"),
            dir: PemDir::new().expect("a temporary directory"),
        }
    }

    /// The server CA's certificate as a file: its path as text, for environment variables and
    /// command lines.
    ///
    /// # Panics
    ///
    /// As [`Pki::file`].
    pub fn ca_file(&self) -> String {
        self.file("ca.pem", self.ca.cert_pem())
    }

    /// A [`TlsFront`] for `backend` with a `localhost` leaf of the server CA, which asks every
    /// client for a certificate of the client CA.
    ///
    /// # Panics
    ///
    /// When the front cannot start.
    pub fn mtls_front(&self, backend: SocketAddr) -> TlsFront {
        TlsFront::start_requiring_client_cert(backend, &self.ca.leaf(&LOCALHOST), &self.client_ca)
            .expect("mTLS front")
    }

    /// A file named `name` holding `text`: its path as text.
    ///
    /// # Panics
    ///
    /// When the file cannot be written, or its path is not UTF-8.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.write(name, text).expect("write a file");
        path.to_str().expect("a UTF-8 path").to_owned()
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A TLS server on 127.0.0.1 and a free port, in front of a plain HTTP server: it completes the
/// handshake with a given certificate (and, if asked, requires a client certificate signed by a
/// given CA), and relays the plaintext both ways to the backend address, one backend connection
/// per client connection.
///
/// # Threads and locks
///
/// Each connection has three threads, and none of them holds a lock across blocking I/O:
/// - the **reader** reads the client's TLS bytes and feeds them to the connection's
///   `rustls::ServerConnection`; the plaintext that comes out is forwarded to the backend (a
///   backend connection is made once the first request bytes arrive);
/// - the **pump** reads the backend's answers and hands them to the `ServerConnection` to be
///   encrypted (waiting for room when rustls's buffer is full);
/// - the **writer** is the only one that writes to the client: it takes the TLS records rustls
///   has ready (handshake messages, alerts, encrypted answers) and sends them, so the records
///   leave in the order rustls made them.
///
/// The `ServerConnection` is behind a `Mutex` taken only for in-memory work, with a `Condvar`
/// that tells the writer there is output and the pump there is room.
///
/// # Shutdown
///
/// Dropping the front stops it: no new connections, every client and backend socket shut down
/// (a blocked read or write returns at once), every writer woken, and all threads waited for.
/// Nothing is left running and nothing hangs. Dropping the backend [`Server`](crate::Server)
/// first is fine too: every connection then ends as the backend's do.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    shared: Arc<Front>,
    acceptor: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Starts a front for `backend` that presents `identity` and asks for no client certificate.
    ///
    /// # Errors
    ///
    /// When the certificate is refused by rustls, or the socket or the accepting thread cannot
    /// be set up.
    pub fn start(backend: SocketAddr, identity: &Identity) -> io::Result<TlsFront> {
        let config = server_config(identity, None)?;
        TlsFront::launch(backend, config)
    }

    /// Starts a front for `backend` that presents `identity` and requires a client certificate
    /// signed by `client_ca`: a client without one fails the handshake.
    ///
    /// # Errors
    ///
    /// As [`TlsFront::start`].
    pub fn start_requiring_client_cert(
        backend: SocketAddr,
        identity: &Identity,
        client_ca: &Ca,
    ) -> io::Result<TlsFront> {
        let config = server_config(identity, Some(client_ca))?;
        TlsFront::launch(backend, config)
    }

    fn launch(backend: SocketAddr, config: ServerConfig) -> io::Result<TlsFront> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Front {
            config: Arc::new(config),
            backend,
            state: Mutex::new(FrontState::default()),
            changed: Condvar::new(),
            accepted: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("fetchall-tls-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(TlsFront {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address the front listens on (127.0.0.1 and its port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT/path`. A missing leading `/` is added.
    pub fn url(&self, path: &str) -> String {
        self.url_for(&self.addr.ip().to_string(), path)
    }

    /// `https://HOST:PORT/path`, for a host name that resolves to 127.0.0.1 (`localhost`), to
    /// check a certificate against that name. A missing leading `/` is added.
    pub fn url_for(&self, host: &str, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("https://{host}:{}{slash}{path}", self.addr.port())
    }

    /// How many TCP connections the front has accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for TlsFront {
    /// Stops the front: see [Shutdown](TlsFront#shutdown).
    fn drop(&mut self) {
        let sessions: Vec<Arc<Session>> = {
            let mut state = self.shared.lock();
            // Set under the lock that registering takes, so nothing is added after the sweep.
            state.stopping = true;
            for open in state.open.values() {
                for stream in &open.streams {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            state.open.values().map(|o| o.session.clone()).collect()
        };
        // Each session's lock is taken only with the front's released: the two never nest.
        for session in sessions {
            session.finish();
        }

        if let Some(acceptor) = self.acceptor.take() {
            // accept() has no timeout: a connection of our own wakes it to see the flag. If even
            // that fails, leave the thread rather than hang on it.
            if TcpStream::connect(self.addr).is_ok() {
                let _ = acceptor.join();
            }
        }

        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut state = self.shared.lock();
        while state.threads > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn server_config(identity: &Identity, client_ca: Option<&Ca>) -> io::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(io::Error::other)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert_der().clone()).map_err(io::Error::other)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(io::Error::other)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(vec![identity.cert_der().clone()], identity.private_key())
        .map_err(io::Error::other)
}

/// What the accepting thread, the connection threads and [`TlsFront`] share.
#[derive(Debug)]
struct Front {
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    state: Mutex<FrontState>,
    /// Signalled when a thread ends.
    changed: Condvar,
    accepted: AtomicU64,
}

#[derive(Debug, Default)]
struct FrontState {
    stopping: bool,
    next_id: u64,
    /// Every open connection: second handles on its sockets, for `Drop` to shut them down.
    open: HashMap<u64, Open>,
    /// Connection threads running.
    threads: usize,
}

#[derive(Debug)]
struct Open {
    streams: Vec<TcpStream>,
    session: Arc<Session>,
}

impl Front {
    fn lock(&self) -> MutexGuard<'_, FrontState> {
        // No code of ours can panic while holding this lock; take the state even if it did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new connection and its client socket; `None` when stopping.
    fn register(&self, client: &TcpStream, session: &Arc<Session>) -> Option<u64> {
        let handle = client.try_clone().ok()?;
        let mut state = self.lock();
        if state.stopping {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let open = Open {
            streams: vec![handle],
            session: session.clone(),
        };
        state.open.insert(id, open);
        Some(id)
    }

    /// Adds the backend socket to connection `id`; `false` when stopping.
    fn add_stream(&self, id: u64, stream: &TcpStream) -> bool {
        let Ok(handle) = stream.try_clone() else {
            return false;
        };
        let mut state = self.lock();
        if state.stopping {
            return false;
        }
        match state.open.get_mut(&id) {
            Some(open) => {
                open.streams.push(handle);
                true
            }
            None => false,
        }
    }

    /// Starts a connection thread, counted so that `Drop` can wait for it; `false` when stopping
    /// or when no thread can be had.
    fn spawn(self: &Arc<Self>, name: &str, body: impl FnOnce() + Send + 'static) -> bool {
        {
            let mut state = self.lock();
            if state.stopping {
                return false;
            }
            state.threads += 1;
        }
        let counted = Counted(self.clone());
        let spawned = thread::Builder::new().name(name.into()).spawn(move || {
            let _counted = counted;
            body();
        });
        // On failure the closure, and with it the counter's guard, is already dropped.
        spawned.is_ok()
    }
}

/// Counts one connection thread down when it ends, however it ends.
struct Counted(Arc<Front>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.lock().threads -= 1;
        self.0.changed.notify_all();
    }
}

/// Removes a connection from [`FrontState::open`] (closing the second handles on its sockets)
/// when the last of its threads lets go of it.
struct Registration {
    front: Arc<Front>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let open = self.front.lock().open.remove(&self.id);
        // The sockets close here, with the lock released.
        drop(open);
    }
}

/// One TLS connection, shared by its three threads.
#[derive(Debug)]
struct Session {
    state: Mutex<SessionState>,
    /// Signalled when there is TLS output to send, room for more plaintext, or the end.
    changed: Condvar,
}

#[derive(Debug)]
struct SessionState {
    conn: ServerConnection,
    /// No more output will be made: the writer sends what is left and ends.
    done: bool,
}

impl Session {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        // rustls does not panic on input; take the state even if it did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, SessionState>) -> MutexGuard<'a, SessionState> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the session: the writer flushes what is queued and stops, the pump stops.
    fn finish(&self) {
        self.lock().done = true;
        self.changed.notify_all();
    }
}

fn accept_loop(listener: &TcpListener, front: &Arc<Front>) {
    loop {
        let accepted = listener.accept();
        if front.lock().stopping {
            return;
        }
        let Ok((client, _)) = accepted else {
            // Out of file descriptors, for instance: back off instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        front.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_nodelay(true);
        let Ok(conn) = ServerConnection::new(front.config.clone()) else {
            continue;
        };
        let session = Arc::new(Session {
            state: Mutex::new(SessionState { conn, done: false }),
            changed: Condvar::new(),
        });
        let Some(id) = front.register(&client, &session) else {
            continue;
        };
        let registration = Arc::new(Registration {
            front: front.clone(),
            id,
        });
        let Ok(writer_socket) = client.try_clone() else {
            continue;
        };
        let (writer_session, writer_registration) = (session.clone(), registration.clone());
        let writer = move || {
            let _registration = writer_registration;
            write_loop(&writer_session, &writer_socket);
        };
        if !front.spawn("fetchall-tls-write", writer) {
            continue;
        }
        let reader_front = front.clone();
        let reader = move || {
            read_loop(&reader_front, &session, &client, &registration);
        };
        if !front.spawn("fetchall-tls-read", reader) {
            // The writer is waiting for output that will never come.
            let open = front.lock().open.get(&id).map(|o| o.session.clone());
            if let Some(session) = open {
                session.finish();
            }
        }
    }
}

/// The reader: client bytes into rustls, plaintext out to the backend.
fn read_loop(
    front: &Arc<Front>,
    session: &Arc<Session>,
    client: &TcpStream,
    registration: &Arc<Registration>,
) {
    let mut buf = vec![0; RELAY_BUFFER];
    let mut backend: Option<TcpStream> = None;
    loop {
        let n = match (&*client).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (plain, end) = session.take_in(&buf[..n]);
        // The writer may have handshake messages or an alert to send now.
        session.changed.notify_all();
        if !plain.is_empty() {
            if backend.is_none() {
                backend = connect_backend(front, session, registration);
            }
            let sent = backend
                .as_ref()
                .is_some_and(|b| (&*b).write_all(&plain).is_ok());
            if !sent {
                session.finish();
                let _ = client.shutdown(Shutdown::Both);
                break;
            }
        }
        match end {
            Input::More => {}
            Input::Closed => break,
            Input::Failed => {
                // The alert rustls queued goes out, then the writer ends the connection.
                session.finish();
                break;
            }
        }
    }
    match backend {
        // The client is done sending: pass that on, and the backend's close ends the session.
        Some(backend) => {
            let _ = backend.shutdown(Shutdown::Write);
        }
        None => session.finish(),
    }
}

/// What the client's input amounted to, after the plaintext in it.
enum Input {
    More,
    /// The client sent `close_notify`.
    Closed,
    /// Not TLS, or a handshake that failed (a missing client certificate, say).
    Failed,
}

impl Session {
    /// Feeds `input` to rustls and takes out the plaintext it yields. In memory only.
    fn take_in(&self, mut input: &[u8]) -> (Vec<u8>, Input) {
        let mut plain = Vec::new();
        let mut state = self.lock();
        let conn = &mut state.conn;
        while !input.is_empty() {
            match conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return (plain, Input::Failed),
            }
            if conn.process_new_packets().is_err() {
                return (plain, Input::Failed);
            }
            // rustls takes no more input while its plaintext is unread.
            match conn.reader().read_to_end(&mut plain) {
                Ok(_) => return (plain, Input::Closed),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return (plain, Input::Failed),
            }
        }
        (plain, Input::More)
    }
}

/// Connects to the backend, registers the socket and starts the pump. `None` when any of that
/// fails.
fn connect_backend(
    front: &Arc<Front>,
    session: &Arc<Session>,
    registration: &Arc<Registration>,
) -> Option<TcpStream> {
    let backend = TcpStream::connect(front.backend).ok()?;
    let _ = backend.set_nodelay(true);
    if !front.add_stream(registration.id, &backend) {
        return None;
    }
    let pump_socket = backend.try_clone().ok()?;
    let (pump_session, pump_registration) = (session.clone(), registration.clone());
    let pump = move || {
        let _registration = pump_registration;
        pump_loop(&pump_session, &pump_socket);
    };
    front.spawn("fetchall-tls-pump", pump).then_some(backend)
}

/// The pump: backend bytes into rustls, to be encrypted.
fn pump_loop(session: &Session, backend: &TcpStream) {
    let mut buf = vec![0; RELAY_BUFFER];
    let clean = loop {
        let n = match (&*backend).read(&mut buf) {
            Ok(0) => break true,
            Err(_) => break false,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        let mut state = session.lock();
        while !rest.is_empty() {
            if state.done {
                return;
            }
            match state.conn.writer().write(rest) {
                Ok(written) if written > 0 => {
                    rest = &rest[written..];
                    session.changed.notify_all();
                }
                // rustls's buffer is full: wait for the writer to take records out.
                _ => state = session.wait(state),
            }
        }
        drop(state);
        session.changed.notify_all();
    };
    let mut state = session.lock();
    if clean {
        // The backend closed the connection: close the TLS session properly. A reset backend
        // ends it without, as a reset would.
        state.conn.send_close_notify();
    }
    state.done = true;
    drop(state);
    session.changed.notify_all();
}

/// The writer: the only thread that writes to the client.
fn write_loop(session: &Session, client: &TcpStream) {
    loop {
        let (out, done) = {
            let mut state = session.lock();
            while !state.conn.wants_write() && !state.done {
                state = session.wait(state);
            }
            let mut out = Vec::new();
            while state.conn.wants_write() {
                if state.conn.write_tls(&mut out).is_err() {
                    break;
                }
            }
            (out, state.done)
        };
        // There is room for the pump again.
        session.changed.notify_all();
        if !out.is_empty() && (&*client).write_all(&out).is_err() {
            session.finish();
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        if done {
            let _ = client.shutdown(Shutdown::Write);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GENEROUS, server, within};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, StreamOwned};

    /// A rustls client configuration that trusts `ca` and presents `client` if given.
    fn client_config(ca: &Ca, client: Option<&Identity>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).expect("add the CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .expect("versions")
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(vec![id.cert_der().clone()], id.private_key())
                .expect("client certificate"),
        };
        Arc::new(config)
    }

    /// Sends `GET path` over TLS to `front` as `host` and returns the whole response, or the
    /// error that ended it.
    fn get(
        front: &TlsFront,
        config: Arc<ClientConfig>,
        host: &str,
        path: &str,
    ) -> io::Result<String> {
        let name = ServerName::try_from(host.to_owned()).expect("server name");
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let sock = TcpStream::connect(front.addr())?;
        sock.set_read_timeout(Some(GENEROUS))?;
        let mut tls = StreamOwned::new(conn, sock);
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())?;
        let mut response = String::new();
        tls.read_to_string(&mut response)?;
        Ok(response)
    }

    fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
        e.get_ref()?.downcast_ref::<rustls::Error>()
    }

    #[test]
    fn every_route_works_over_tls() {
        within(GENEROUS, || {
            let server = server();
            let ca = Ca::new("test CA");
            let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST)).expect("front");
            for host in LOCALHOST {
                let ok = get(&front, client_config(&ca, None), host, "/ok").expect("GET /ok");
                assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
                assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
            }
            // More than rustls buffers at once, so the pump must wait for the writer.
            let big = get(
                &front,
                client_config(&ca, None),
                "localhost",
                "/bytes/1000000",
            )
            .expect("GET /bytes/1000000");
            assert!(big.ends_with(&"x".repeat(1000)));
            let body = big.split_once("\r\n\r\n").expect("head").1;
            assert_eq!(body.len(), 1_000_000);
            let missing = get(&front, client_config(&ca, None), "localhost", "/status/404")
                .expect("GET /status/404");
            assert!(
                missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{missing}"
            );
            assert_eq!(front.connections_accepted(), 4);
            assert_eq!(server.connections_accepted(), 4);
        });
    }

    #[test]
    fn certificates_are_checked_by_the_client() {
        within(GENEROUS, || {
            let server = server();
            let ca = Ca::new("test CA");
            let other = Ca::new("other CA");
            let cases = [
                (other.leaf(&LOCALHOST), "localhost"),
                (ca.expired_leaf(&LOCALHOST), "localhost"),
                (ca.leaf(&["wrong.example"]), "localhost"),
                (self_signed(&LOCALHOST), "127.0.0.1"),
            ];
            for (identity, host) in cases {
                let front = TlsFront::start(server.addr(), &identity).expect("front");
                let e = get(&front, client_config(&ca, None), host, "/ok").expect_err("refused");
                let reason = rustls_error(&e);
                assert!(
                    matches!(reason, Some(rustls::Error::InvalidCertificate(_))),
                    "{e}"
                );
            }
            // None of them reached the backend.
            assert_eq!(server.connections_accepted(), 0);
        });
    }

    #[test]
    fn a_client_certificate_can_be_required() {
        within(GENEROUS, || {
            let server = server();
            let ca = Ca::new("test CA");
            let client_ca = Ca::new("test client CA");
            let leaf = ca.leaf(&LOCALHOST);
            let front = TlsFront::start_requiring_client_cert(server.addr(), &leaf, &client_ca)
                .expect("front");

            let refused = get(&front, client_config(&ca, None), "localhost", "/ok")
                .expect_err("no client certificate");
            assert!(
                matches!(
                    rustls_error(&refused),
                    Some(rustls::Error::AlertReceived(
                        rustls::AlertDescription::CertificateRequired
                    ))
                ),
                "{refused}"
            );
            let stranger = ca.client_cert("signed by the wrong CA");
            let refused = get(
                &front,
                client_config(&ca, Some(&stranger)),
                "localhost",
                "/ok",
            )
            .expect_err("a client certificate from another CA");
            assert!(rustls_error(&refused).is_some(), "{refused}");

            let client = client_ca.client_cert("test client");
            let ok = get(
                &front,
                client_config(&ca, Some(&client)),
                "localhost",
                "/ok",
            )
            .expect("with a client certificate");
            assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
            assert_eq!(server.connections_accepted(), 1);
        });
    }

    #[test]
    fn certificates_have_the_validity_asked_for() {
        let ca = Ca::new("test CA");
        let now = SystemTime::now();
        assert!(ca.expired_leaf(&LOCALHOST).not_after() < now);
        let soon = ca.leaf_expiring_in(&LOCALHOST, 5).not_after();
        let left = soon.duration_since(now).expect("in the future");
        assert_eq!(left.as_secs() / 86_400, 5);
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let leaf = ca.leaf(&LOCALHOST);
        assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{leaf:?}").contains("PRIVATE"));
    }

    #[test]
    fn drop_ends_every_connection_and_never_hangs() {
        within(GENEROUS, || {
            let server = server();
            let ca = Ca::new("test CA");
            let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST)).expect("front");
            // One connection mid-request (the backend never answers), one that never finishes
            // its handshake, one idle after a response.
            let config = client_config(&ca, None);
            let name = ServerName::try_from("localhost").expect("name");
            let conn = ClientConnection::new(config.clone(), name).expect("client");
            let sock = TcpStream::connect(front.addr()).expect("connect");
            sock.set_read_timeout(Some(GENEROUS)).expect("timeout");
            let mut hanging = StreamOwned::new(conn, sock);
            hanging
                .write_all(b"GET /hang HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("send");
            let mut silent = TcpStream::connect(front.addr()).expect("connect");
            silent.set_read_timeout(Some(GENEROUS)).expect("timeout");
            let ok = get(&front, config, "localhost", "/ok").expect("GET /ok");
            assert!(ok.ends_with("ok\n"));

            let started = Instant::now();
            drop(front);
            assert!(started.elapsed() < SHUTDOWN_GRACE, "waited out the grace");
            // Both clients see the end instead of waiting on.
            let mut rest = Vec::new();
            let hung = hanging.read_to_end(&mut rest);
            assert!(hung.is_err() || rest.is_empty(), "{hung:?}");
            assert!(matches!(silent.read(&mut [0; 16]), Ok(0) | Err(_)));
        });
    }

    #[test]
    fn a_client_that_is_not_tls_is_dropped() {
        within(GENEROUS, || {
            let server = server();
            let front = TlsFront::start(server.addr(), &self_signed(&LOCALHOST)).expect("front");
            let mut plain = TcpStream::connect(front.addr()).expect("connect");
            plain
                .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            let mut answer = Vec::new();
            // An alert, then the end of the connection.
            let _ = plain.read_to_end(&mut answer);
            assert!(!answer.starts_with(b"HTTP/"));
            assert_eq!(server.connections_accepted(), 0);
        });
    }

    #[test]
    fn pem_files_go_away_with_their_directory() {
        let dir = PemDir::new().expect("temp dir");
        let ca = Ca::new("test CA");
        let path = dir.write("ca.pem", ca.cert_pem()).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), ca.cert_pem());
        let other = PemDir::new().expect("another");
        assert_ne!(other.path(), dir.path());
        let kept = dir.path().to_owned();
        drop(dir);
        assert!(!kept.exists());
    }
}
