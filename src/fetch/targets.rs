//! Host targeting as curl has it: [`Resolve`] (`--resolve HOST:PORT:ADDR[,ADDR...]`) gives a
//! host its addresses without asking DNS, and [`ConnectTo`] (`--connect-to
//! HOST1:PORT1:HOST2:PORT2`) sends the connections for one host and port to another. Either way
//! the request itself does not change: its `Host` header, the TLS server name and the
//! certificate check stay those of the URL's host, which is how a site is tried on a new server
//! before DNS points at it.
//!
//! The resolver applies both ([`Targets`]): a connection for the URL's host and port goes to the
//! first `--connect-to` that matches them, and the host it then names is looked up in the
//! `--resolve` entries before DNS. A proxy's own host name is looked up in the `--resolve`
//! entries too, but never redirected by `--connect-to`, as in curl.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::repr::repr;

/// A host name's addresses, given instead of looking it up: curl's
/// `--resolve [+]HOST:PORT:ADDR[,ADDR...]`.
///
/// `HOST` is a host name, an IP address (IPv6 in brackets), or `*` for every host; it is
/// matched without regard to case. `PORT` is the port the URL connects to (80 and 443 when it
/// names none). Each `ADDR` is an IPv4 or IPv6 address, IPv6 with or without brackets; with
/// several, connections race them as they race a host name's addresses (Happy Eyeballs, see
/// the [module](crate::fetch)). A leading `+` is accepted and changes nothing: in curl it lets
/// the entry time out of its DNS cache, and here entries last as long as the fetcher. curl's
/// `-HOST:PORT`, which removes an entry, is not supported.
///
/// When several entries name one host and port, the last one counts; an entry for the host
/// itself comes before a `*` entry.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::Resolve;
///
/// let entry: Resolve = "example.com:443:127.0.0.1,[::1]".parse()?;
/// assert_eq!(entry.to_string(), "example.com:443:127.0.0.1,[::1]");
/// assert!("example.com:443".parse::<Resolve>().is_err());
/// # Ok::<(), fetchall::fetch::ParseTargetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// Lower case, IPv6 without brackets; `None` for `*`.
    host: Option<String>,
    port: u16,
    addrs: Vec<IpAddr>,
}

/// Where to connect instead: curl's `--connect-to HOST1:PORT1:HOST2:PORT2`.
///
/// A connection for a URL whose host is `HOST1` and whose port is `PORT1` (80 and 443 when the
/// URL names none) is made to `HOST2` on `PORT2` instead. An empty `HOST1` or `PORT1` matches
/// every host or port; an empty `HOST2` or `PORT2` keeps the URL's own. Hosts are names or IP
/// addresses, IPv6 in brackets. `HOST2` is resolved as any host is, [`Resolve`] entries first.
/// Of several entries, the first that matches counts.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::ConnectTo;
///
/// let entry: ConnectTo = "example.com:443:staging.internal:8443".parse()?;
/// assert_eq!(entry.to_string(), "example.com:443:staging.internal:8443");
/// let any_port: ConnectTo = "example.com::127.0.0.1:".parse()?;
/// assert_eq!(any_port.to_string(), "example.com::127.0.0.1:");
/// # Ok::<(), fetchall::fetch::ParseTargetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// Lower case, IPv6 without brackets; `None` matches every host.
    from_host: Option<String>,
    /// `None` matches every port.
    from_port: Option<u16>,
    /// `None` keeps the URL's host.
    to_host: Option<String>,
    /// `None` keeps the URL's port.
    to_port: Option<u16>,
}

/// Why a text is not a [`Resolve`] or a [`ConnectTo`] entry:
/// `'example.com:443' is not HOST:PORT:ADDR[,ADDR...]: no address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTargetError(String);

impl fmt::Display for ParseTargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseTargetError {}

/// Splits `text` at its first `:` outside brackets: a host (brackets kept) and what follows.
fn split_host(text: &str) -> Option<(&str, &str)> {
    let end = if text.starts_with('[') {
        text.find(']')? + 1
    } else {
        text.find(':')?
    };
    let rest = text[end..].strip_prefix(':')?;
    Some((&text[..end], rest))
}

/// A host as the URL would have it, for matching: lower case, IPv6 without brackets. `Err`
/// names what is wrong.
fn host(text: &str) -> Result<String, String> {
    if let Some(inside) = text.strip_prefix('[') {
        let inside = inside.strip_suffix(']').unwrap_or(inside);
        return match inside.parse::<Ipv6Addr>() {
            Ok(ip) => Ok(ip.to_string()),
            Err(_) => Err(format!("{} is not an IPv6 address", repr(text))),
        };
    }
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if valid {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("{} is not a host name or address", repr(text)))
    }
}

fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{} is not a port from 1 to 65535", repr(text))),
    }
}

fn address(text: &str) -> Result<IpAddr, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map_err(|_| format!("{} is not an IP address", repr(text)))
}

/// `host` as it is written in `HOST:PORT`: IPv6 in brackets.
fn show_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl FromStr for Resolve {
    type Err = ParseTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form = "HOST:PORT:ADDR[,ADDR...]";
        let error = |why: String| ParseTargetError(format!("{} is not {form}: {why}", repr(s)));
        if s.starts_with('-') {
            return Err(error(
                "removing an entry (-HOST:PORT) is not supported".into(),
            ));
        }
        let text = s.strip_prefix('+').unwrap_or(s);
        let (host_text, rest) = split_host(text).ok_or_else(|| error("no port".into()))?;
        let (port_text, addrs_text) = rest
            .split_once(':')
            .ok_or_else(|| error("no address".into()))?;
        let host = match host_text {
            "*" => None,
            other => Some(host(other).map_err(error)?),
        };
        let port = port(port_text).map_err(error)?;
        let addrs = addrs_text
            .split(',')
            .map(|a| address(a.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(Resolve { host, port, addrs })
    }
}

impl fmt::Display for Resolve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host.as_deref().map_or_else(|| "*".into(), show_host);
        write!(f, "{host}:{}:", self.port)?;
        for (i, addr) in self.addrs.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            match addr {
                IpAddr::V4(v4) => write!(f, "{comma}{v4}")?,
                IpAddr::V6(v6) => write!(f, "{comma}[{v6}]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for ConnectTo {
    type Err = ParseTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form = "HOST1:PORT1:HOST2:PORT2";
        let error = |why: String| ParseTargetError(format!("{} is not {form}: {why}", repr(s)));
        let too_few = || error("it needs four parts, separated by ':'".into());
        let (from_host, rest) = split_host(s).ok_or_else(too_few)?;
        let (from_port, rest) = rest.split_once(':').ok_or_else(too_few)?;
        let (to_host, to_port) = split_host(rest).ok_or_else(too_few)?;
        let host = |text: &str| (!text.is_empty()).then(|| host(text)).transpose();
        let port = |text: &str| (!text.is_empty()).then(|| port(text)).transpose();
        Ok(ConnectTo {
            from_host: host(from_host).map_err(error)?,
            from_port: port(from_port).map_err(error)?,
            to_host: host(to_host).map_err(error)?,
            to_port: port(to_port).map_err(error)?,
        })
    }
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &Option<String>| h.as_deref().map(show_host).unwrap_or_default();
        let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        write!(
            f,
            "{}:{}:{}:{}",
            host(&self.from_host),
            port(self.from_port),
            host(&self.to_host),
            port(self.to_port)
        )
    }
}

/// A fetcher's `--resolve` and `--connect-to` entries, as the resolver applies them.
#[derive(Debug, Clone, Default)]
pub(super) struct Targets {
    resolve: Vec<Resolve>,
    connect_to: Vec<ConnectTo>,
}

impl Targets {
    pub(super) fn new(resolve: Vec<Resolve>, connect_to: Vec<ConnectTo>) -> Targets {
        Targets {
            resolve,
            connect_to,
        }
    }

    /// The host and port a connection for `host` (bare, as [`host_and_port`] gives it) and
    /// `port` goes to: the first [`ConnectTo`] that matches, or the same.
    ///
    /// [`host_and_port`]: super::resolver::host_and_port
    pub(super) fn connect_to<'a>(&'a self, host: &'a str, port: u16) -> (&'a str, u16) {
        self.redirect(host, port).unwrap_or((host, port))
    }

    /// Where the first [`ConnectTo`] that matches `host` and `port` sends a connection, if one
    /// does.
    pub(super) fn redirect<'a>(&'a self, host: &'a str, port: u16) -> Option<(&'a str, u16)> {
        let matches = |entry: &&ConnectTo| {
            entry
                .from_host
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(host))
                && entry.from_port.is_none_or(|p| p == port)
        };
        let entry = self.connect_to.iter().find(matches)?;
        Some((
            entry.to_host.as_deref().unwrap_or(host),
            entry.to_port.unwrap_or(port),
        ))
    }

    /// The addresses the [`Resolve`] entries give `host` on `port`, if any.
    pub(super) fn addresses(&self, host: &str, port: u16) -> Option<&[IpAddr]> {
        let last = |wanted: Option<&str>| {
            self.resolve.iter().rev().find(|entry| {
                entry.port == port
                    && match (entry.host.as_deref(), wanted) {
                        (Some(h), Some(wanted)) => h.eq_ignore_ascii_case(wanted),
                        (None, None) => true,
                        _ => false,
                    }
            })
        };
        let entry = last(Some(host)).or_else(|| last(None))?;
        Some(&entry.addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn resolve_entries_parse_as_curl_writes_them() {
        let entry: Resolve = "Example.COM:443:127.0.0.1".parse().expect("valid");
        assert_eq!(entry.host.as_deref(), Some("example.com"));
        assert_eq!(
            (entry.port, entry.addrs.clone()),
            (443, vec![ip("127.0.0.1")])
        );
        for (text, shown) in [
            ("+a.test:80:10.0.0.1", "a.test:80:10.0.0.1"),
            (
                "a.test:80:10.0.0.1, [::1],fe80::2",
                "a.test:80:10.0.0.1,[::1],[fe80::2]",
            ),
            ("*:8080:127.0.0.1", "*:8080:127.0.0.1"),
            ("[::1]:80:127.0.0.1", "[::1]:80:127.0.0.1"),
            ("10.1.1.1:80:127.0.0.1", "10.1.1.1:80:127.0.0.1"),
        ] {
            let entry: Resolve = text.parse().expect(text);
            assert_eq!(entry.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Resolve>().as_ref(), Ok(&entry), "{shown}");
        }
    }

    #[test]
    fn bad_resolve_entries_say_why() {
        let form = "is not HOST:PORT:ADDR[,ADDR...]";
        for (text, why) in [
            ("example.com", "no port"),
            ("example.com:443", "no address"),
            ("example.com:443:", "'' is not an IP address"),
            (
                "example.com:443:localhost",
                "'localhost' is not an IP address",
            ),
            (
                "example.com:0:127.0.0.1",
                "'0' is not a port from 1 to 65535",
            ),
            ("example.com:https:127.0.0.1", "'https' is not a port"),
            (":443:127.0.0.1", "'' is not a host name or address"),
            ("exa mple:443:127.0.0.1", "'exa mple' is not a host name"),
            ("[::1:443:127.0.0.1", "no port"),
            ("[nope]:443:127.0.0.1", "'[nope]' is not an IPv6 address"),
            (
                "-example.com:443",
                "removing an entry (-HOST:PORT) is not supported",
            ),
        ] {
            let e = text.parse::<Resolve>().expect_err(text).to_string();
            assert!(e.starts_with(&format!("{} {form}: ", repr(text))), "{e}");
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn connect_to_entries_parse_with_empty_parts() {
        for text in [
            "a.test:443:b.test:8443",
            "::b.test:",
            "a.test::[::1]:",
            "[::1]:80:127.0.0.1:8080",
            ":::",
        ] {
            let entry: ConnectTo = text.parse().expect(text);
            assert_eq!(entry.to_string(), text);
        }
        let entry: ConnectTo = "A.Test:443::".parse().expect("valid");
        assert_eq!(entry.from_host.as_deref(), Some("a.test"));
        assert_eq!((entry.to_host, entry.to_port), (None, None));
    }

    #[test]
    fn bad_connect_to_entries_say_why() {
        let form = "is not HOST1:PORT1:HOST2:PORT2";
        for (text, why) in [
            ("a.test:443:b.test", "it needs four parts"),
            ("a.test", "it needs four parts"),
            ("a.test:443:b.test:8443:1", "'8443:1' is not a port"),
            ("a.test:x:b.test:1", "'x' is not a port"),
            ("a.test:1:b test:1", "'b test' is not a host name"),
            ("[::1:1:b.test:1", "it needs four parts"),
        ] {
            let e = text.parse::<ConnectTo>().expect_err(text).to_string();
            assert!(e.starts_with(&format!("{} {form}: ", repr(text))), "{e}");
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    fn targets(resolve: &[&str], connect_to: &[&str]) -> Targets {
        Targets::new(
            resolve.iter().map(|r| r.parse().expect(r)).collect(),
            connect_to.iter().map(|c| c.parse().expect(c)).collect(),
        )
    }

    #[test]
    fn the_last_resolve_entry_counts_and_a_host_beats_the_wildcard() {
        let t = targets(
            &[
                "a.test:80:10.0.0.1",
                "*:80:10.0.0.9",
                "A.TEST:80:10.0.0.2",
                "b.test:443:10.0.0.3",
            ],
            &[],
        );
        assert_eq!(t.addresses("a.test", 80), Some(&[ip("10.0.0.2")][..]));
        assert_eq!(t.addresses("other.test", 80), Some(&[ip("10.0.0.9")][..]));
        assert_eq!(t.addresses("b.test", 443), Some(&[ip("10.0.0.3")][..]));
        assert_eq!(t.addresses("b.test", 80), Some(&[ip("10.0.0.9")][..]));
        assert_eq!(t.addresses("a.test", 443), None);
        assert_eq!(targets(&[], &[]).addresses("a.test", 80), None);
    }

    #[test]
    fn the_first_matching_connect_to_counts() {
        let t = targets(
            &[],
            &["a.test:443:b.test:8443", "a.test::c.test:", "::d.test:81"],
        );
        assert_eq!(t.connect_to("a.test", 443), ("b.test", 8443));
        assert_eq!(t.connect_to("A.test", 80), ("c.test", 80));
        assert_eq!(t.connect_to("x.test", 80), ("d.test", 81));
        let keep = targets(&[], &["a.test:80::8080"]);
        assert_eq!(keep.connect_to("a.test", 80), ("a.test", 8080));
        assert_eq!(keep.connect_to("a.test", 81), ("a.test", 81));
        assert_eq!(keep.redirect("a.test", 81), None);
        assert_eq!(keep.redirect("a.test", 80), Some(("a.test", 8080)));
    }
}
