//! Which proxy a URL goes through: curl's rules for the proxy variables ([`Proxies`]).

use std::net::IpAddr;

use ureq::Proxy;
use ureq::http::Uri;

use super::FetchError;

/// The HTTP proxy for each URL scheme, and the hosts that bypass them: curl's rules.
///
/// | URL | Proxy, first one set and not empty |
/// |---|---|
/// | `http://` | `http_proxy`, `all_proxy`, `ALL_PROXY` |
/// | `https://` | `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` |
///
/// Upper-case `HTTP_PROXY` is ignored, as curl ignores it: under CGI, a request's `Proxy:`
/// header arrives as that variable ("httpoxy"). A value without a scheme is an `http://`
/// proxy. `no_proxy` (or `NO_PROXY`) lists hosts that are fetched directly, separated by commas
/// or spaces: `*` for every host, a domain name for itself and its subdomains (a leading `.` or
/// `*.` changes nothing), an IP address, or an IP network (`10.0.0.0/8`). Ports are not part of
/// the match.
///
/// Through an HTTP proxy (`http://`, or `https://` for TLS to the proxy), an `http://` URL is
/// sent to the proxy whole, in absolute form (`GET http://host/path HTTP/1.1`), as curl and
/// Python send it, and an `https://` URL goes through a `CONNECT` tunnel. Credentials in the
/// proxy URL (`http://user:pass@proxy:3128`, percent-encoded) are sent as
/// `Proxy-Authorization: Basic` either way. A SOCKS proxy is `socks5://` (fetchall resolves the
/// host name and hands the proxy an address), `socks5h://` (the proxy resolves it), `socks4://`
/// or `socks4a://`; SOCKS5 credentials in its URL are used too. A redirect keeps the proxy chosen
/// for the URL it started from. A value that is none of these fails each URL that would use it
/// with [`FetchError::UnusableProxy`], rather than go around the proxy.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::{FetchOptions, Proxies};
///
/// let mut options = FetchOptions::default(); // reads the environment
/// options.proxies = Proxies::none();
/// let vars = [("https_proxy", "http://127.0.0.1:3128"), ("no_proxy", "localhost,.internal")];
/// let proxies = Proxies::from_vars(|name| {
///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// });
/// # drop(proxies);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    http: Option<ProxyVar>,
    https: Option<ProxyVar>,
    no_proxy: Vec<NoProxy>,
}

/// A proxy variable and what it says: `None` when it is unusable.
#[derive(Debug, Clone)]
struct ProxyVar {
    var: &'static str,
    value: String,
    proxy: Option<Proxy>,
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxy {
    All,
    /// A domain, lower case, without a leading dot: matches it and its subdomains.
    Domain(String),
    /// An address and the number of leading bits that must match.
    Network(IpAddr, u32),
}

impl Proxies {
    /// No proxy: every URL is fetched directly.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxies the environment names (see the [table](Proxies)).
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The proxies `lookup` names, given the variable names of the [table](Proxies): for tests,
    /// and for settings that come from somewhere other than the environment.
    pub fn from_vars(mut lookup: impl FnMut(&str) -> Option<String>) -> Proxies {
        let mut first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                let value = lookup(name)?;
                (!value.trim().is_empty()).then_some((name, value))
            })
        };
        let all = first(&["all_proxy", "ALL_PROXY"]);
        let http = first(&["http_proxy"]).or_else(|| all.clone());
        let https = first(&["https_proxy", "HTTPS_PROXY"]).or(all);
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|(_, value)| parse_no_proxy(&value))
            .unwrap_or_default();
        Proxies {
            http: http.map(ProxyVar::new),
            https: https.map(ProxyVar::new),
            no_proxy,
        }
    }

    /// The proxy for `uri`, `None` to fetch it directly.
    pub(super) fn select(&self, uri: &Uri) -> Result<Option<&Proxy>, FetchError> {
        let var = match uri.scheme_str() {
            Some("https") => &self.https,
            _ => &self.http,
        };
        let Some(var) = var else {
            return Ok(None);
        };
        let host = uri.host().unwrap_or_default();
        if self.bypasses(host) {
            return Ok(None);
        }
        match &var.proxy {
            Some(proxy) => Ok(Some(proxy)),
            None => Err(FetchError::UnusableProxy {
                var: var.var,
                value: var.value.clone(),
            }),
        }
    }

    /// Whether `no_proxy` sends `host` (as in a URI: IPv6 in brackets) around the proxy.
    fn bypasses(&self, host: &str) -> bool {
        if self.no_proxy.is_empty() {
            return false;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| match (entry, ip) {
            (NoProxy::All, _) => true,
            (NoProxy::Network(network, bits), Some(ip)) => in_network(ip, *network, *bits),
            (NoProxy::Domain(domain), None) => {
                name == *domain
                    || name
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.ends_with('.'))
            }
            _ => false,
        })
    }
}

impl ProxyVar {
    fn new((var, value): (&'static str, String)) -> ProxyVar {
        let value_scheme = value.trim().split_once("://").map(|(scheme, _)| scheme);
        // ureq also takes `socks://` for SOCKS5, which curl does not document: left out.
        let proxy = Proxy::new(value.trim())
            .ok()
            .filter(|_| value_scheme != Some("socks"));
        ProxyVar { var, value, proxy }
    }
}

/// The entries of a `no_proxy` value; entries that mean nothing are left out.
fn parse_no_proxy(value: &str) -> Vec<NoProxy> {
    let entry = |entry: &str| {
        if entry == "*" {
            return Some(NoProxy::All);
        }
        let (address, bits) = match entry.split_once('/') {
            Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
            None => (entry, None),
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = address.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return Some(NoProxy::Network(ip, bits.unwrap_or(max).min(max)));
        }
        let domain = entry.trim_start_matches('*').trim_start_matches('.');
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        (bits.is_none() && !domain.is_empty()).then_some(NoProxy::Domain(domain))
    };
    value
        .split([',', ' ', '\t'])
        .filter(|e| !e.is_empty())
        .filter_map(entry)
        .collect()
}

/// Whether the first `bits` bits of `ip` and `network` agree (never across address families).
fn in_network(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    let prefix = |a: u128, b: u128, width: u32| {
        let shift = width - bits.min(width);
        a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            prefix(u32::from(ip).into(), u32::from(net).into(), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => prefix(u128::from(ip), u128::from(net), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::ProxyProtocol;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// The proxy `proxies` picks for `url`: its URI, or the error's text.
    fn picked(proxies: &Proxies, url: &str) -> Option<String> {
        let uri: Uri = url.parse().expect("test URL");
        match proxies.select(&uri) {
            Ok(proxy) => proxy.map(|p| format!("{}:{}", p.host(), p.port())),
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn proxies_are_chosen_by_scheme_like_curl() {
        let p = proxies(&[("http_proxy", "http://h:1"), ("HTTPS_PROXY", "s:2")]);
        assert_eq!(picked(&p, "http://a/").as_deref(), Some("h:1"));
        assert_eq!(picked(&p, "https://a/").as_deref(), Some("s:2"));

        let all = proxies(&[("ALL_PROXY", "http://all:3"), ("https_proxy", "")]);
        assert_eq!(picked(&all, "http://a/").as_deref(), Some("all:3"));
        assert_eq!(picked(&all, "https://a/").as_deref(), Some("all:3"));

        // Upper-case HTTP_PROXY is ignored (httpoxy), and https_proxy is only for https.
        let ignored = proxies(&[("HTTP_PROXY", "http://h:1"), ("https_proxy", "http://s:2")]);
        assert_eq!(picked(&ignored, "http://a/"), None);
        assert_eq!(picked(&proxies(&[]), "https://a/"), None);
        assert!(Proxies::none().http.is_none() && Proxies::none().https.is_none());
    }

    #[test]
    fn an_unusable_proxy_is_an_error_only_where_it_applies() {
        let p = proxies(&[("all_proxy", "ftp://s:21"), ("no_proxy", "direct")]);
        assert_eq!(
            picked(&p, "http://a/").as_deref(),
            Some(
                "unusable proxy in all_proxy: 'ftp://s:21' (a proxy is http://, https://, \
                 socks4://, socks4a://, socks5:// or socks5h://)"
            )
        );
        assert_eq!(picked(&p, "http://direct/"), None);
        let p = proxies(&[("all_proxy", "socks://s:1080")]);
        assert!(picked(&p, "http://a/").is_some_and(|e| e.starts_with("unusable proxy")));
        let p = proxies(&[("http_proxy", "http://[bad")]);
        assert!(picked(&p, "http://a/").is_some_and(|e| e.starts_with("unusable proxy")));
    }

    #[test]
    fn socks_proxies_are_taken_as_curl_takes_them() {
        for (value, protocol, resolves_locally) in [
            ("socks5://127.0.0.1:1080", ProxyProtocol::Socks5, true),
            ("socks5h://127.0.0.1:1080", ProxyProtocol::Socks5h, false),
            ("socks4://127.0.0.1:1080", ProxyProtocol::Socks4, true),
            ("socks4a://127.0.0.1:1080", ProxyProtocol::Socks4A, false),
        ] {
            let p = proxies(&[("all_proxy", value)]);
            let uri: Uri = "https://a.test/".parse().expect("test URL");
            let proxy = p.select(&uri).expect("usable").expect("a proxy");
            assert_eq!(proxy.protocol(), protocol, "{value}");
            assert_eq!(proxy.resolve_target(), resolves_locally, "{value}");
        }
    }

    #[test]
    fn no_proxy_matches_domains_addresses_and_networks() {
        let p = proxies(&[
            ("http_proxy", "http://h:1"),
            (
                "no_proxy",
                "Example.COM, .internal,*.corp 10.0.0.0/8,::1,192.168.1.7,[fd00::]/8,bad/x",
            ),
        ]);
        for (host, bypass) in [
            ("example.com", true),
            ("www.EXAMPLE.com", true),
            ("example.com.", true),
            ("notexample.com", false),
            ("example.org", false),
            ("internal", true),
            ("a.b.internal", true),
            ("corp", true),
            ("x.corp", true),
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("[::1]", true),
            ("[::2]", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("[fd12::1]", true),
            ("bad", false),
        ] {
            assert_eq!(p.bypasses(host), bypass, "{host}");
        }
        assert!(proxies(&[("NO_PROXY", "*")]).bypasses("anything"));
        let whole = proxies(&[("no_proxy", "0.0.0.0/0")]);
        assert!(whole.bypasses("203.0.113.9") && !whole.bypasses("[::1]"));
    }
}
