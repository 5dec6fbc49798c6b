//! The `fetchall` binary over real TLS on 127.0.0.1 (`fetchall_serve::tls::TlsFront`, with
//! certificates made for the run): the system's trust store and `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, `--cacert`, `--cert`/`--key`, `--cert-expiry`, the certificate fields of the
//! JSON lines, and passwords in URLs kept out of logs and messages.
//!
//! Every child's environment is `PATH` alone plus what a test sets (see `support::bin`), so
//! without `SSL_CERT_FILE` it reads the machine's own store, which knows nothing of the test CA.

use std::time::SystemTime;

use fetchall_serve::testing::{refused_addr, server};
use fetchall_serve::tls::{Ca, Identity, LOCALHOST, Pki, TlsFront};

use crate::support::bin::fetchall as command;
use crate::support::proxy::TunnelProxy;
use crate::support::{TempFile, exception, fetch_one as fetchall, json, page};

const VERIFY_FAILED: &str =
    "<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ";

/// Runs `fetchall FILE ARGS`, FILE listing `url` alone, with `env` (and `PATH`) only.
fn front(server: &fetchall_serve::Server, identity: &Identity) -> TlsFront {
    TlsFront::start(server.addr(), identity).expect("TLS front")
}

#[test]
fn ssl_cert_file_and_dir_are_trusted_and_without_them_the_issuer_is_unknown() {
    let (pki, server) = (Pki::new(), server());
    let front = front(&server, &pki.ca.leaf(&LOCALHOST));
    let url = front.url_for("localhost", "/ok");
    let ca = pki.ca_file();

    let run = fetchall(&url, &[], &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(
        (run.code(), run.stdout.as_str()),
        (Some(0), &*page(&url, 3))
    );
    let dir = pki.dir.path().to_str().expect("UTF-8");
    let run = fetchall(&url, &[], &[("SSL_CERT_DIR", dir)]);
    assert_eq!(run.stdout, page(&url, 3), "{}", run.stderr);

    // The system's own store, which has never heard of the test CA.
    let run = fetchall(&url, &[], &[]);
    let unknown = format!("{VERIFY_FAILED}unable to get local issuer certificate>");
    assert_eq!(run.stdout, exception(&url, &unknown));
    assert_eq!(run.code(), Some(1));
    // Only the successful handshakes reached the server behind the front.
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn cacert_replaces_the_trust_store() {
    let (pki, server) = (Pki::new(), server());
    let front = front(&server, &pki.ca.leaf(&LOCALHOST));
    let url = front.url_for("localhost", "/bytes/7");
    let ca = pki.ca_file();
    // A bundle: another CA first, then the test CA.
    let other = Ca::new("another CA");
    let bundle = pki.file(
        "bundle.pem",
        &format!("{}{}", other.cert_pem(), pki.ca.cert_pem()),
    );
    let run = fetchall(&url, &["--cacert", &bundle], &[]);
    assert_eq!(run.stdout, page(&url, 7), "{}", run.stderr);

    // As curl's --cacert: the file is all that is trusted, SSL_CERT_FILE or not.
    let others = pki.file("other.pem", other.cert_pem());
    let run = fetchall(&url, &["--cacert", &others], &[("SSL_CERT_FILE", &ca)]);
    let unknown = format!("{VERIFY_FAILED}unable to get local issuer certificate>");
    assert_eq!(run.stdout, exception(&url, &unknown));

    let missing = pki.dir.path().join("missing.pem");
    let missing = missing.to_str().expect("UTF-8").to_owned();
    let empty = pki.file("empty.pem", "not a certificate\n");
    for (bad, why) in [(&missing, "No such file"), (&empty, "no certificate in it")] {
        let run = fetchall(&url, &["--cacert", bad], &[]);
        assert_eq!(run.code(), Some(2), "{run:?}");
        assert!(
            run.stderr
                .starts_with(&format!("fetchall: cannot use --cacert {bad}: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_server_that_wants_a_client_certificate_gets_the_one_given() {
    let (pki, server) = (Pki::new(), server());
    let front = pki.mtls_front(server.addr());
    let url = front.url_for("localhost", "/ok");
    let ca = pki.ca_file();
    let client = pki.client_ca.client_cert("fetchall test client");
    let cert = pki.file("client.pem", client.cert_pem());
    let key = pki.file("client.key", client.key_pem());
    let both = pki.file(
        "both.pem",
        &format!("{}{}", client.cert_pem(), client.key_pem()),
    );

    let run = fetchall(&url, &["--cacert", &ca], &[]);
    assert_eq!(
        run.stdout,
        exception(
            &url,
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"
        )
    );
    assert_eq!(run.code(), Some(1));

    let run = fetchall(
        &url,
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
        &[],
    );
    assert_eq!(run.stdout, page(&url, 3), "{}", run.stderr);
    let run = fetchall(&url, &["--cacert", &ca, "--cert", &both], &[]);
    assert_eq!(run.stdout, page(&url, 3), "{}", run.stderr);

    // A certificate without its key is refused before anything is fetched.
    let run = fetchall(&url, &["--cacert", &ca, "--cert", &cert], &[]);
    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr.starts_with(&format!(
            "fetchall: cannot use --cert {cert}: the private key"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn cert_expiry_fails_a_certificate_that_expires_within_the_days() {
    let (pki, server) = (Pki::new(), server());
    let leaf = pki.ca.leaf_expiring_in(&LOCALHOST, 5);
    let front = front(&server, &leaf);
    let url = front.url_for("localhost", "/ok");
    let ca = pki.ca_file();

    let run = fetchall(&url, &["--cacert", &ca, "--format", "json"], &[]);
    let v = json(&run);
    assert_eq!(v["cert_days_left"], 5);
    let not_after = v["cert_not_after"].as_str().expect("a date").to_owned();

    let run = fetchall(&url, &["--cacert", &ca, "--cert-expiry", "10"], &[]);
    let message = format!("certificate expires in 5 days ({})", &not_after[..10]);
    assert_eq!(run.stdout, exception(&url, &message));
    assert_eq!(run.code(), Some(1));
    let run = fetchall(
        &url,
        &["--cacert", &ca, "--cert-expiry", "10", "--format", "json"],
        &[],
    );
    let v = json(&run);
    assert_eq!(
        (v["ok"].clone(), v["error"].clone()),
        (false.into(), message.into())
    );
    assert_eq!(v["cert_days_left"], 5);

    let run = fetchall(&url, &["--cacert", &ca, "--cert-expiry", "5"], &[]);
    assert_eq!(run.stdout, page(&url, 3), "5 days and an hour left");
}

#[test]
fn https_json_lines_carry_the_certificate_and_http_lines_do_not() {
    let (pki, server) = (Pki::new(), server());
    let leaf = pki.ca.leaf(&LOCALHOST);
    let front = front(&server, &leaf);
    let ca = pki.ca_file();
    let url = front.url_for("localhost", "/ok");
    let v = json(&fetchall(&url, &["--cacert", &ca, "--format", "json"], &[]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["tls_version"], "TLSv1.3");
    assert_eq!(v["cert_subject"], "CN=localhost");
    assert_eq!(v["cert_issuer"], "CN=fetchall test CA");
    let days = v["cert_days_left"].as_i64().expect("days");
    assert!((364..=365).contains(&days), "{days}");
    let not_after = v["cert_not_after"].as_str().expect("RFC 3339");
    let secs = leaf
        .not_after()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(
        not_after.ends_with('Z') && not_after.len() == 20,
        "{not_after}"
    );
    // The seconds agree with the certificate's.
    assert_eq!(&not_after[17..19], format!("{:02}", secs % 60));

    // A failure that got an answer still carries it.
    let missing = front.url_for("localhost", "/status/404");
    let v = json(&fetchall(
        &missing,
        &["--cacert", &ca, "--format", "json"],
        &[],
    ));
    assert_eq!(
        (v["ok"].clone(), v["status"].clone()),
        (false.into(), 404.into())
    );
    assert_eq!(v["cert_subject"], "CN=localhost");

    let v = json(&fetchall(&server.url("/ok"), &["--format", "json"], &[]));
    let fields = v.as_object().expect("an object");
    assert!(
        fields
            .keys()
            .all(|k| !k.starts_with("cert_") && k != "tls_version"),
        "{v}"
    );
}

#[test]
fn a_password_in_a_url_is_sent_but_never_repeated() {
    let server = server();
    let secret = "s3cr3t-Pa55";
    let echo = server
        .url("/echo")
        .replacen("http://", &format!("http://user:{secret}@"), 1);
    let refused = format!("http://user:{secret}@{}/x", refused_addr());
    let invalid = format!("ftp://user:{secret}@example.invalid/");
    // The redirect is logged at -vv, from and to.
    let redirect =
        server
            .url("/redirect/1")
            .replacen("http://", &format!("http://user:{secret}@"), 1);
    let list = TempFile::holding(format!("{echo}\n{refused}\n{invalid}\n{redirect}\n"));
    let run = command()
        .arg(list.path())
        .args(["-vv", "--format", "json", "--retries", "1"])
        .run();
    assert_eq!(run.code(), Some(1), "{run:?}");
    // Sent as Basic authentication, as curl sends it.
    let head = server.last_echo().expect("the /echo request");
    let basic = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            // base64("user:s3cr3t-Pa55")
            name.eq_ignore_ascii_case("authorization")
                && value.trim() == "Basic dXNlcjpzM2NyM3QtUGE1NQ=="
        })
    });
    assert!(basic, "{head}");
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    // Nor its Basic-auth form, which is the password in base64.
    assert!(
        !run.stderr.contains("dXNlcjpzM2NyM3QtUGE1NQ"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("user:***@"), "{}", run.stderr);
    assert!(run.stderr.contains("redirected"), "{}", run.stderr);
    for line in run.lines() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        for (field, value) in v.as_object().expect("object") {
            if field != "url" {
                assert!(!value.to_string().contains(secret), "{field}: {value}");
            }
        }
    }
    // The text lines: the URL as given, the message without the password.
    let run = command().arg(list.path()).run();
    for line in run.lines() {
        let (_, message) = line
            .split_once(" generated an exception: ")
            .unwrap_or(("", ""));
        assert!(!message.contains(secret), "{line}");
    }
}

#[test]
fn an_empty_trust_store_falls_back_to_the_bundled_roots_and_says_so() {
    let (pki, server) = (Pki::new(), server());
    let front = front(&server, &pki.ca.leaf(&LOCALHOST));
    let url = front.url_for("localhost", "/ok");
    let empty = pki.file("no-certificates.pem", "");
    let run = fetchall(&url, &[], &[("SSL_CERT_FILE", &empty)]);
    // The bundled Mozilla roots do not know the test CA either.
    let unknown = format!("{VERIFY_FAILED}unable to get local issuer certificate>");
    assert_eq!(run.stdout, exception(&url, &unknown));
    assert!(
        run.stderr
            .contains("fetchall: warning: no certificate authority in the system's trust store"),
        "{}",
        run.stderr
    );
    // An http-only run never reads the store, so it has nothing to say.
    let run = fetchall(&server.url("/ok"), &["-q"], &[("SSL_CERT_FILE", &empty)]);
    assert_eq!(run.stderr, "");
}

#[test]
fn many_https_urls_on_many_workers_each_carry_their_own_servers_certificate() {
    let (pki, server) = (Pki::new(), server());
    let ca = pki.ca_file();
    // Two servers whose certificates differ in their days left, fetched interleaved.
    let fronts = [
        front(&server, &pki.ca.leaf_expiring_in(&LOCALHOST, 40)),
        front(&server, &pki.ca.leaf_expiring_in(&LOCALHOST, 80)),
    ];
    let urls: Vec<String> = (0..60)
        .map(|i| fronts[i % 2].url_for("localhost", &format!("/bytes/{i}")))
        .collect();
    let list = TempFile::holding(urls.join("\n") + "\n");
    let run = command()
        .arg(list.path())
        .args(["--cacert", &ca, "--format", "json", "-w", "8", "-q"])
        .run();
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 60);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let url = v["url"].as_str().expect("url");
        let days = if url.contains(&fronts[0].addr().port().to_string()) {
            40
        } else {
            80
        };
        assert_eq!(v["cert_days_left"], days, "{line}");
        let n: u64 = url
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("n");
        assert_eq!(v["bytes"], n, "{line}");
    }
    // Kept alive: far fewer handshakes than URLs.
    let handshakes = fronts[0].connections_accepted() + fronts[1].connections_accepted();
    assert!(handshakes <= 16, "{handshakes} connections for 60 URLs");
}

#[test]
fn https_through_an_https_proxy_is_tls_inside_tls() {
    let (pki, server) = (Pki::new(), server());
    let ca = pki.ca_file();
    // The two certificates differ in their days left, so the JSON line shows whose it carries.
    let origin = front(&server, &pki.ca.leaf_expiring_in(&LOCALHOST, 40));
    // An https:// proxy: TLS to the proxy, and inside it a CONNECT tunnel to the origin.
    let tunnel = TunnelProxy::start(origin.addr());
    let proxy = TlsFront::start(tunnel.addr(), &pki.ca.leaf_expiring_in(&LOCALHOST, 80))
        .expect("proxy front");
    let proxy_url = proxy.url_for("localhost", "");
    let url = origin.url_for("localhost", "/bytes/9");
    let run = fetchall(
        &url,
        &["--format", "json"],
        &[("SSL_CERT_FILE", &ca), ("https_proxy", &proxy_url)],
    );
    let v = json(&run);
    assert_eq!(v["ok"], true, "{v} {}", run.stderr);
    assert_eq!(v["bytes"], 9);
    // The site's certificate, not the proxy's: what --cert-expiry must check.
    assert_eq!(v["cert_days_left"], 40, "{v}");
    assert!(
        tunnel.received()[0].starts_with("CONNECT "),
        "the proxy was asked for a tunnel"
    );
    assert_eq!(proxy.connections_accepted(), 1);
    assert_eq!(origin.connections_accepted(), 1);
}
