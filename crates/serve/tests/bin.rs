//! The `fetchall-serve` binary: it starts, prints its base URL first, serves the routes there,
//! and stops when it is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use fetchall_serve::OK_BODY;
use fetchall_serve::testing::{GENEROUS, within};

/// The server process, killed when dropped if a failed test leaves it running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_prints_its_url_serves_ok_and_stops_when_killed() {
    within(GENEROUS, || {
        let mut child = Running(
            Command::new(env!("CARGO_BIN_EXE_fetchall-serve"))
                .arg("0")
                .stdout(Stdio::piped())
                .spawn()
                .expect("fetchall-serve starts"),
        );
        let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
        let mut url = String::new();
        stdout.read_line(&mut url).expect("the first line");
        let addr = url
            .trim_end()
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("not a base URL: {url:?}"))
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let mut routes = String::new();
        stdout.read_line(&mut routes).expect("a blank line");
        stdout.read_line(&mut routes).expect("the routes' heading");
        stdout.read_line(&mut routes).expect("the first route");
        assert!(routes.contains("/ok "), "{routes}");

        let mut conn = TcpStream::connect(&addr).expect("connect to the server");
        conn.set_read_timeout(Some(GENEROUS)).expect("read timeout");
        conn.write_all(b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = Vec::new();
        conn.read_to_end(&mut response).expect("a response");
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(response.ends_with(OK_BODY));

        child.0.kill().expect("kill");
        let status = child.0.wait().expect("wait");
        assert!(!status.success());
        assert!(TcpStream::connect(&addr).is_err(), "still serving {addr}");
    });
}
