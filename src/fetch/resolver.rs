//! Host names to addresses, without a thread per request: `--resolve` and `--connect-to`
//! entries first ([`Targets`]), IP literals directly, host names from a cache that every agent
//! of a fetcher shares.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ureq::Timeout;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::targets::Targets;

/// How long a host name's addresses are reused before it is looked up again.
pub const DNS_TTL: Duration = Duration::from_secs(60);

/// How long a failed lookup is remembered. Shorter than [`DNS_TTL`], so a passing resolver
/// hiccup does not fail a minute of URLs.
const DNS_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// The most host names cached: above it, expired entries are swept out before adding one, and
/// if none has expired, the one that expires first goes. Lookups under way come on top, one
/// per request at most.
const DNS_CACHE_MAX: usize = 4096;

/// The addresses of a host name, or why it has none. Shared by every request for the host.
type Lookup = Result<Arc<[IpAddr]>, Arc<io::Error>>;

/// A failed lookup, carried through ureq as `Error::Other` so that `classify` can tell it from
/// a connect error.
#[derive(Debug)]
pub(super) struct LookupFailed(pub(super) Arc<io::Error>);

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for LookupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Resolves host names without a thread per request.
///
/// - An IP literal is its own address: no lookup, no lock.
/// - A host name is looked up once per [`DNS_TTL`] (failures for a few seconds), on a thread of
///   its own so that the request's deadline bounds the wait even though `getaddrinfo` cannot be
///   interrupted. Requests for a host whose lookup is under way wait for that one.
///
/// Before any of that, the fetcher's `--resolve` and `--connect-to` entries ([`Targets`]) are
/// applied. Clones share the cache and the entries.
#[derive(Debug, Default, Clone)]
pub(super) struct CachingResolver {
    hosts: Arc<Mutex<HashMap<String, Entry>>>,
    targets: Arc<Targets>,
}

#[derive(Debug)]
enum Entry {
    Ready { lookup: Lookup, expires: Instant },
    Pending(Arc<Pending>),
}

/// A lookup under way: its thread fills `result` and wakes everyone waiting.
#[derive(Debug, Default)]
struct Pending {
    result: Mutex<Option<Lookup>>,
    done: Condvar,
}

impl Pending {
    /// Waits until the lookup is done or `wait` has passed (then `None`).
    fn wait(&self, wait: Duration) -> Option<Lookup> {
        let result = self.result.lock().unwrap();
        // `wait_timeout_while` loops over spurious wakeups. The result is set under the same
        // lock that `complete` takes before notifying, so a wakeup cannot slip between check
        // and wait.
        let (result, _) = self
            .done
            .wait_timeout_while(result, wait, |result| result.is_none())
            .unwrap();
        result.clone()
    }
}

impl CachingResolver {
    /// A resolver that applies `targets` first.
    pub(super) fn new(targets: Arc<Targets>) -> CachingResolver {
        CachingResolver {
            hosts: Arc::default(),
            targets,
        }
    }

    /// The addresses of `host`, from the cache or from a lookup that must end within `wait`.
    fn lookup(&self, host: &str, wait: Duration) -> Result<Arc<[IpAddr]>, ureq::Error> {
        let (pending, start) = {
            let mut hosts = self.hosts.lock().unwrap();
            let now = Instant::now();
            match hosts.get(host) {
                Some(Entry::Ready { lookup, expires }) if *expires > now => {
                    return lookup.clone().map_err(lookup_failed);
                }
                Some(Entry::Pending(pending)) => (pending.clone(), false),
                _ => {
                    if hosts.len() >= DNS_CACHE_MAX {
                        hosts.retain(
                            |_, e| !matches!(e, Entry::Ready { expires, .. } if *expires <= now),
                        );
                    }
                    if hosts.len() >= DNS_CACHE_MAX {
                        evict_soonest(&mut hosts);
                    }
                    let pending = Arc::new(Pending::default());
                    hosts.insert(host.to_owned(), Entry::Pending(pending.clone()));
                    (pending, true)
                }
            }
        };
        if start {
            self.start_lookup(host, &pending);
        }
        match pending.wait(wait) {
            Some(lookup) => lookup.map_err(lookup_failed),
            None => Err(ureq::Error::Timeout(Timeout::Resolve)),
        }
    }

    /// Starts the lookup thread. It outlives a request that stops waiting, and its answer still
    /// lands in the cache for the next one.
    fn start_lookup(&self, host: &str, pending: &Arc<Pending>) {
        let hosts = self.hosts.clone();
        let task_pending = pending.clone();
        let task_host = host.to_owned();
        let spawned = thread::Builder::new()
            .name("fetchall-dns".into())
            .spawn(move || {
                let lookup = (task_host.as_str(), 0)
                    .to_socket_addrs()
                    .and_then(|addrs| {
                        let ips: Arc<[IpAddr]> = addrs.map(|a| a.ip()).collect();
                        if ips.is_empty() {
                            Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                "no address for host",
                            ))
                        } else {
                            Ok(ips)
                        }
                    })
                    .map_err(Arc::new);
                complete(&hosts, task_host, &task_pending, lookup);
            });
        if let Err(e) = spawned {
            complete(&self.hosts, host.to_owned(), pending, Err(Arc::new(e)));
        }
    }
}

/// Removes the ready entry that expires first: a list of more host names than the cache holds
/// within one TTL (20,000 hosts, say) would otherwise grow it without a bound.
fn evict_soonest(hosts: &mut HashMap<String, Entry>) {
    let soonest = hosts
        .iter()
        .filter_map(|(host, entry)| match entry {
            Entry::Ready { expires, .. } => Some((*expires, host)),
            Entry::Pending(_) => None,
        })
        .min_by_key(|(expires, _)| *expires)
        .map(|(_, host)| host.clone());
    if let Some(host) = soonest {
        hosts.remove(&host);
    }
}

/// Records a finished lookup in the cache and wakes the requests waiting for it.
fn complete(
    hosts: &Mutex<HashMap<String, Entry>>,
    host: String,
    pending: &Pending,
    lookup: Lookup,
) {
    let ttl = if lookup.is_ok() {
        DNS_TTL
    } else {
        DNS_NEGATIVE_TTL
    };
    let expires = Instant::now() + ttl;
    hosts.lock().unwrap().insert(
        host,
        Entry::Ready {
            lookup: lookup.clone(),
            expires,
        },
    );
    *pending.result.lock().unwrap() = Some(lookup);
    pending.done.notify_all();
}

pub(super) fn lookup_failed(e: Arc<io::Error>) -> ureq::Error {
    ureq::Error::Other(Box::new(LookupFailed(e)))
}

/// The host (brackets stripped from IPv6) and port of an `http`/`https` URI, or of a SOCKS
/// proxy's.
pub(super) fn host_and_port(uri: &Uri) -> Result<(&str, u16), ureq::Error> {
    let bad = || ureq::Error::BadUri(uri.to_string());
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        // A SOCKS proxy's own URI: ureq has the resolver look its host up too.
        Some("socks4" | "socks4a" | "socks5" | "socks5h") => 1080,
        _ => return Err(bad()),
    };
    let (host, port) = split_authority(uri.authority().ok_or_else(bad)?.as_str());
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port.unwrap_or(default_port)))
}

/// An authority's host (brackets stripped from IPv6) and port, the user part left out: what
/// `Uri::host` and `Uri::port_u16` give, in one pass over bytes instead of their string
/// searches (`BENCHMARKS.md`, "The fetcher's own work"). `http` checked the authority when it
/// parsed the URI.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let bytes = authority.as_bytes();
    let start = bytes
        .iter()
        .rposition(|&b| b == b'@')
        .map_or(0, |at| at + 1);
    let host_port = &authority[start..];
    let hp = host_port.as_bytes();
    let (host, port) = if hp.first() == Some(&b'[') {
        match hp.iter().position(|&b| b == b']') {
            Some(close) => (
                &host_port[1..close],
                host_port[close + 1..].strip_prefix(':'),
            ),
            None => (host_port, None),
        }
    } else {
        match hp.iter().rposition(|&b| b == b':') {
            Some(colon) => (&host_port[..colon], Some(&host_port[colon + 1..])),
            None => (host_port, None),
        }
    };
    (host, port.and_then(|p| p.parse().ok()))
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let started = Instant::now();
        let (host, port) = host_and_port(uri)?;
        // ureq asks for a proxy's own address with the proxy's URI: `--connect-to` is for the
        // URLs, as in curl, and `--resolve` for every name.
        let is_proxy = config.proxy().is_some_and(|proxy| proxy.uri() == uri);
        let (host, port) = if is_proxy {
            (host, port)
        } else {
            self.targets.connect_to(host, port)
        };
        let literal: [IpAddr; 1];
        let looked_up: Arc<[IpAddr]>;
        let ips: &[IpAddr] = match (self.targets.addresses(host, port), host.parse::<IpAddr>()) {
            (Some(given), _) => given,
            (None, Ok(ip)) => {
                literal = [ip];
                &literal
            }
            (None, Err(_)) => {
                looked_up = self.lookup(host, *timeout.after)?;
                &looked_up
            }
        };

        let mut addrs = self.empty();
        let family = config.ip_family();
        let wanted = family.keep_wanted(ips.iter().map(|ip| SocketAddr::new(*ip, port)));
        for addr in wanted {
            if addrs.try_push(addr).is_err() {
                break;
            }
        }
        if addrs.is_empty() {
            let e = io::Error::new(
                io::ErrorKind::NotFound,
                "no address of the wanted IP family",
            );
            return Err(lookup_failed(Arc::new(e)));
        }
        super::facts::looked_up(started.elapsed());
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_splits_as_the_uri_s_own_accessors_split_it() {
        for url in [
            "http://127.0.0.1:8080/a",
            "http://example.com/",
            "https://u:p@example.com:8443/x?y",
            "http://u@h:1/",
            "http://[::1]/",
            "https://[::1]:8443/",
            "http://u:p@[fe80::1]:99/",
            "http://h:/",
            "socks5://proxy:1080",
        ] {
            let uri: Uri = url.parse().expect(url);
            let authority = uri.authority().expect(url).as_str();
            let host = uri.host().expect(url);
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            assert_eq!(split_authority(authority), (host, uri.port_u16()), "{url}");
        }
    }

    fn resolve(resolver: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().expect("test URL");
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_secs(10)),
            reason: Timeout::Global,
            ..NextTimeout::default()
        };
        let addrs = resolver.resolve(&uri, &Config::default(), timeout)?;
        Ok(addrs.to_vec())
    }

    #[test]
    fn ip_literals_resolve_without_a_lookup() {
        let resolver = CachingResolver::default();
        let v4 = resolve(&resolver, "http://127.0.0.1:8080/").expect("v4");
        assert_eq!(v4, vec![SocketAddr::from(([127, 0, 0, 1], 8080))]);
        let v6 = resolve(&resolver, "https://[::1]/").expect("v6");
        assert_eq!(v6, vec!["[::1]:443".parse::<SocketAddr>().expect("addr")]);
        // Nothing entered the cache, so no lookup thread was started.
        assert!(resolver.hosts.lock().unwrap().is_empty());
    }

    #[test]
    fn the_cache_holds_at_most_its_bound_of_names() {
        let mut hosts = HashMap::new();
        let now = Instant::now();
        for i in 0..DNS_CACHE_MAX {
            let expires = now + Duration::from_secs(60 + i as u64);
            let lookup: Lookup = Ok(Arc::from([IpAddr::from([127, 0, 0, 1])]));
            hosts.insert(format!("h{i}"), Entry::Ready { lookup, expires });
        }
        evict_soonest(&mut hosts);
        assert_eq!(hosts.len(), DNS_CACHE_MAX - 1);
        assert!(!hosts.contains_key("h0"), "the first to expire goes");
    }

    #[test]
    fn host_names_are_looked_up_once() {
        let resolver = CachingResolver::default();
        let first = resolve(&resolver, "http://localhost:8080/").expect("localhost");
        assert!(
            first
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        let second = resolve(&resolver, "http://localhost:9090/").expect("localhost again");
        assert!(second.iter().all(|a| a.port() == 9090));
        let hosts = resolver.hosts.lock().unwrap();
        assert_eq!(hosts.len(), 1);
        assert!(matches!(
            hosts.get("localhost"),
            Some(Entry::Ready { lookup: Ok(_), .. })
        ));
    }

    #[test]
    fn a_lookup_under_way_is_waited_for_by_the_deadline() {
        let resolver = CachingResolver::default();
        // A lookup that never completes: nobody fills this slot.
        let pending = Arc::new(Pending::default());
        resolver
            .hosts
            .lock()
            .unwrap()
            .insert("slow.test".into(), Entry::Pending(pending));
        let started = Instant::now();
        let e = resolver
            .lookup("slow.test", Duration::from_millis(50))
            .expect_err("no answer");
        assert!(matches!(e, ureq::Error::Timeout(Timeout::Resolve)));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
