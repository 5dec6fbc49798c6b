//! `https` over real TLS on 127.0.0.1, against `fetchall_serve::tls::TlsFront` with certificates
//! made for the run: trust, client certificates, Python's wording of every certificate failure,
//! the certificate facts on a page, and `cert_expiry_days`.

mod common;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::SystemTime;

use common::{GENEROUS, Server, fetcher_with, server, within};
use fetchall::fetch::{ClientIdentity, FetchError, Fetcher, Trust};
use fetchall_serve::testing::require;
use fetchall_serve::tls::{Ca, Identity, LOCALHOST, Pki, TlsFront, self_signed};

/// The test PKI's server CA as the fetcher's only trust.
fn trust(pki: &Pki) -> Trust {
    Trust::from_pem(pki.ca.cert_pem().as_bytes()).expect("the test CA")
}

fn trusting(pki: &Pki) -> Fetcher {
    fetcher_with(|o| o.trust = trust(pki))
}

fn front(server: &Server, identity: &Identity) -> TlsFront {
    TlsFront::start(server.addr(), identity).expect("start the TLS front")
}

/// The failures of the Python example against each bad certificate, as Python 3.11 prints them
/// (without the `(_ssl.c:NNNN)` suffix): see `src/fetch/tls.rs`.
const VERIFY_FAILED: &str =
    "<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ";

/// The cases Python words: a front with a bad certificate, the host to ask for, and the words.
fn bad_fronts(pki: &Pki, server: &Server) -> Vec<(&'static str, TlsFront, &'static str, String)> {
    let other = Ca::new("some other CA");
    let client_ca_front = pki.mtls_front(server.addr());
    vec![
        (
            "unknown CA",
            front(server, &other.leaf(&LOCALHOST)),
            "localhost",
            format!("{VERIFY_FAILED}unable to get local issuer certificate>"),
        ),
        (
            "expired",
            front(server, &pki.ca.expired_leaf(&LOCALHOST)),
            "localhost",
            format!("{VERIFY_FAILED}certificate has expired>"),
        ),
        (
            "self-signed",
            front(server, &self_signed(&LOCALHOST)),
            "localhost",
            format!("{VERIFY_FAILED}self-signed certificate>"),
        ),
        (
            "wrong name",
            front(server, &pki.ca.leaf(&["wrong.example"])),
            "localhost",
            format!("{VERIFY_FAILED}Hostname mismatch, certificate is not valid for 'localhost'.>"),
        ),
        (
            "wrong address",
            front(server, &pki.ca.leaf(&["wrong.example"])),
            "127.0.0.1",
            format!(
                "{VERIFY_FAILED}IP address mismatch, certificate is not valid for '127.0.0.1'.>"
            ),
        ),
        (
            "client certificate required",
            client_ca_front,
            "localhost",
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required".into(),
        ),
    ]
}

/// A server that reads what the client sends first (its ClientHello) and closes its side, for
/// `connections` connections: the client's handshake ends in an EOF.
fn hang_up(connections: usize) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let _ = conn.set_read_timeout(Some(GENEROUS));
            let _ = conn.read(&mut [0; 4096]);
            let _ = conn.shutdown(Shutdown::Write);
            // Read to the client's end, so that closing sends no reset.
            let _ = conn.read_to_end(&mut Vec::new());
        }
    });
    (addr, server)
}

const HANDSHAKE_EOF: &str =
    "<urlopen error [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol>";

#[test]
fn a_server_that_hangs_up_in_the_handshake_is_an_eof_in_violation_of_protocol() {
    within(GENEROUS, || {
        let (addr, server) = hang_up(1);
        let e = fetcher_with(|_| {})
            .load_url(&format!("https://{addr}/"))
            .expect_err("no handshake");
        assert_eq!(e.to_string(), HANDSHAKE_EOF);
        server.join().expect("server thread");
    });
}

#[test]
fn a_trusted_ca_makes_the_page_and_its_certificate_facts() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let leaf = pki.ca.leaf(&LOCALHOST);
        let front = front(&server, &leaf);
        let fetcher = trusting(&pki);
        for host in LOCALHOST {
            let page = fetcher
                .load_url(&front.url_for(host, "/bytes/5"))
                .expect("trusted");
            assert_eq!((page.status, page.bytes), (200, 5));
            let tls = page.tls.expect("an https page has TLS facts");
            assert_eq!(tls.version, "TLSv1.3");
            assert_eq!(tls.subject, "CN=localhost");
            assert_eq!(tls.issuer, "CN=fetchall test CA");
            assert_eq!(tls.not_after, leaf.not_after());
            // A year from the second it was made, counted from a later second.
            assert!((364..=365).contains(&tls.days_left(SystemTime::now())));
        }
        let page = fetcher.load_url(&server.url("/ok")).expect("plain http");
        assert_eq!(page.tls, None);

        // A failure with a response over TLS still has the facts; one without has none.
        let (result, tls) = fetcher.load_url_with_tls(&front.url_for("localhost", "/status/404"));
        assert_eq!(result.expect_err("404").status(), Some(404));
        assert_eq!(tls.expect("facts of the 404").subject, "CN=localhost");
        let (result, tls) = fetcher.load_url_with_tls(&front.url_for("localhost", "/truncate"));
        assert!(
            matches!(result, Err(FetchError::IncompleteRead { .. })),
            "{result:?}"
        );
        assert!(tls.is_some());
        let (result, tls) = fetcher.load_url_with_tls(&front.url_for("localhost", "/ok"));
        assert!(result.is_ok() && tls.is_none(), "a page has its own");
        let untrusted = fetcher_with(|o| o.trust = Trust::Bundled);
        let (result, tls) = untrusted.load_url_with_tls(&front.url_for("localhost", "/ok"));
        assert!(result.is_err() && tls.is_none(), "no handshake, no facts");
    });
}

#[test]
fn a_kept_alive_connection_reports_its_own_facts() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let first = front(&server, &pki.ca.leaf_expiring_in(&LOCALHOST, 100));
        let second = front(&server, &pki.ca.leaf_expiring_in(&LOCALHOST, 30));
        let fetcher = trusting(&pki);
        let days = |url: &str| {
            let page = fetcher.load_url(url).expect("trusted");
            page.tls.expect("facts").days_left(SystemTime::now())
        };
        // Interleaved, so that each request reuses a pooled connection of its own front.
        for _ in 0..3 {
            assert_eq!(days(&first.url_for("localhost", "/ok")), 100);
            assert_eq!(days(&second.url_for("localhost", "/ok")), 30);
        }
        assert_eq!(first.connections_accepted(), 1, "reused");
        assert_eq!(second.connections_accepted(), 1, "reused");
    });
}

#[test]
fn without_the_ca_the_certificate_is_from_an_unknown_issuer() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let front = front(&server, &pki.ca.leaf(&LOCALHOST));
        // The bundled Mozilla roots know nothing of the test CA.
        let fetcher = fetcher_with(|o| o.trust = Trust::Bundled);
        let e = fetcher
            .load_url(&front.url_for("localhost", "/ok"))
            .expect_err("untrusted");
        assert_eq!(
            e.to_string(),
            format!("{VERIFY_FAILED}unable to get local issuer certificate>")
        );
        assert!(matches!(e, FetchError::Tls(_)));
        assert!(!e.is_transient());
        assert_eq!(server.connections_accepted(), 0);
    });
}

#[test]
fn a_ca_file_is_trusted_and_only_it() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let other = Ca::new("another test CA");
        // A bundle of two CAs, with text around the certificates as in real bundles.
        let bundle = format!(
            "# first\n{}\nsome text\n{}",
            other.cert_pem(),
            pki.ca.cert_pem()
        );
        let path = pki.file("bundle.pem", &bundle);
        let trust = Trust::from_pem_file(path.as_ref()).expect("a bundle of two");
        assert!(matches!(&trust, Trust::Only(certs) if certs.len() == 2));
        let fetcher = fetcher_with(|o| o.trust = trust);
        for ca in [&pki.ca, &other] {
            let front = front(&server, &ca.leaf(&LOCALHOST));
            fetcher
                .load_url(&front.url_for("localhost", "/ok"))
                .expect("either CA of the bundle");
        }
        let stranger = front(&server, &Ca::new("a third CA").leaf(&LOCALHOST));
        let e = fetcher
            .load_url(&stranger.url_for("localhost", "/ok"))
            .expect_err("not in the bundle");
        assert!(e.to_string().contains("unable to get local issuer"), "{e}");
        let missing = pki.dir.path().join("missing.pem");
        assert!(Trust::from_pem_file(&missing).is_err());
    });
}

#[test]
fn every_bad_certificate_is_worded_as_python_words_it() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let fetcher = trusting(&pki);
        for (case, front, host, python) in bad_fronts(&pki, &server) {
            let e = fetcher
                .load_url(&front.url_for(host, "/ok"))
                .expect_err(case);
            assert_eq!(e.to_string(), python, "{case}");
        }
    });
}

#[test]
fn a_client_certificate_is_presented_when_asked_for() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let front = pki.mtls_front(server.addr());
        let url = front.url_for("localhost", "/ok");
        let client = pki.client_ca.client_cert("fetchall test client");
        // The key in a file of its own, and in the certificate's file, as curl allows both.
        let cert = pki
            .dir
            .write("client.pem", client.cert_pem())
            .expect("write");
        let key = pki
            .dir
            .write("client.key", client.key_pem())
            .expect("write");
        let both = pki
            .dir
            .write(
                "both.pem",
                &format!("{}{}", client.cert_pem(), client.key_pem()),
            )
            .expect("write");
        for identity in [
            ClientIdentity::from_pem_files(&cert, Some(&key)),
            ClientIdentity::from_pem_files(&both, None),
        ] {
            let identity = identity.expect("a client identity");
            let fetcher = fetcher_with(|o| {
                o.trust = trust(&pki);
                o.client_cert = Some(identity);
            });
            let page = fetcher
                .load_url(&url)
                .expect("accepted with the certificate");
            assert_eq!(page.status, 200);
        }
        // A key that is not the certificate's is refused before anything is sent.
        let stranger = pki.client_ca.client_cert("someone else");
        let e =
            ClientIdentity::from_pem(client.cert_pem().as_bytes(), stranger.key_pem().as_bytes())
                .expect_err("mismatched");
        assert!(e.to_string().starts_with("the key and certificate"), "{e}");
        assert!(
            ClientIdentity::from_pem_files(&cert, None).is_err(),
            "no key"
        );
        // The refusal without one is in `every_bad_certificate_is_worded_as_python_words_it`.
        assert_eq!(server.connections_accepted(), 2);
    });
}

#[test]
fn insecure_accepts_any_certificate_and_still_reports_it() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let fetcher = fetcher_with(|o| o.insecure = true);
        for (case, front, host, _) in bad_fronts(&pki, &server) {
            let result = fetcher.load_url(&front.url_for(host, "/ok"));
            if case == "client certificate required" {
                // Not a certificate check the client can skip.
                assert!(result.is_err());
                continue;
            }
            let page = result.unwrap_or_else(|e| panic!("{case}: {e}"));
            let tls = page.tls.expect("facts");
            if case == "expired" {
                assert_eq!(tls.days_left(SystemTime::now()), -1);
            }
        }
    });
}

#[test]
fn a_certificate_expiring_within_the_limit_fails_the_url() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let leaf = pki.ca.leaf_expiring_in(&LOCALHOST, 5);
        let front = front(&server, &leaf);
        let url = front.url_for("localhost", "/ok");
        let checking = |days| {
            fetcher_with(|o| {
                o.trust = trust(&pki);
                o.cert_expiry_days = Some(days);
            })
        };
        let e = checking(10).load_url(&url).expect_err("5 days < 10");
        let date = match &e {
            FetchError::CertificateExpires { info, days_left } => {
                assert_eq!(*days_left, 5);
                info.not_after_date()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e.to_string(),
            format!("certificate expires in 5 days ({date})")
        );
        assert!(!e.is_transient());
        // Exactly at the limit still fails: the certificate expires within 6 days.
        assert!(checking(6).load_url(&url).is_err());
        let page = checking(5).load_url(&url).expect("5 days and an hour left");
        assert_eq!(page.tls.expect("facts").days_left(SystemTime::now()), 5);
        // Plain http has no certificate to check.
        checking(10)
            .load_url(&server.url("/ok"))
            .expect("http is not checked");
    });
}

/// What the Python example prints for `url` (`SSL_CERT_FILE` set to `ca_file`), without the
/// `(_ssl.c:NNNN)` suffix. Fails the test if python3 cannot be run.
fn python_says(url: &str, ca_file: &str) -> String {
    let script = "import sys, urllib.request\n\
                  try:\n\
                  \x20   urllib.request.urlopen(sys.argv[1], timeout=30).read()\n\
                  \x20   print('ok')\n\
                  except Exception as exc:\n\
                  \x20   print(exc)\n";
    // Says what to install when python3 is missing. Not `testing::python3`: this run needs an
    // environment variable of its own.
    require("python3", "--version");
    let output = Command::new("python3")
        .args(["-c", script, url])
        .env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .env("no_proxy", "*")
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned();
    strip_ssl_c(&text)
}

/// `text` without the ` (_ssl.c:1006)` that Python's messages carry.
fn strip_ssl_c(text: &str) -> String {
    match text.find(" (_ssl.c:") {
        Some(at) => match text[at..].find(')') {
            Some(end) => format!("{}{}", &text[..at], &text[at + end + 1..]),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

#[test]
fn the_ssl_c_suffix_is_what_is_dropped() {
    assert_eq!(
        strip_ssl_c("<urlopen error [SSL: X] certificate has expired (_ssl.c:1006)>"),
        "<urlopen error [SSL: X] certificate has expired>"
    );
    assert_eq!(
        strip_ssl_c("[SSL: Y] alert (_ssl.c:2580)"),
        "[SSL: Y] alert"
    );
    assert_eq!(strip_ssl_c("no suffix"), "no suffix");
}

/// Runs the Python example's `urlopen` against every bad certificate and compares its message
/// with fetchall's, case by case. Python's wording changes with its OpenSSL, so this asks the
/// python3 on the machine instead of trusting the written-down table alone.
#[test]
#[ignore = "needs python3"]
fn every_bad_certificate_is_worded_as_python3_words_it() {
    within(GENEROUS, || {
        let (pki, server) = (Pki::new(), server());
        let ca_file = pki.ca_file();
        let fetcher =
            fetcher_with(|o| o.trust = Trust::from_pem_file(ca_file.as_ref()).expect("CA"));
        let good = front(&server, &pki.ca.leaf(&LOCALHOST));
        assert_eq!(
            python_says(&good.url_for("localhost", "/ok"), &ca_file),
            "ok"
        );
        let mut cases = bad_fronts(&pki, &server);
        let plain = format!("https://{}/ok", server.addr());
        for (case, front, host, _) in cases.drain(..) {
            let url = front.url_for(host, "/ok");
            let ours = fetcher.load_url(&url).expect_err(case).to_string();
            assert_eq!(ours, python_says(&url, &ca_file), "{case}");
        }
        let ours = fetcher.load_url(&plain).expect_err("plain").to_string();
        assert_eq!(ours, python_says(&plain, &ca_file), "plain http");
        let (addr, hangup) = hang_up(2);
        let url = format!("https://{addr}/");
        let ours = fetcher.load_url(&url).expect_err("hang-up").to_string();
        assert_eq!(ours, HANDSHAKE_EOF);
        assert_eq!(ours, python_says(&url, &ca_file), "closed in the handshake");
        hangup.join().expect("server thread");
    });
}
