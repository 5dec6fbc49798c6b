//! The keep-alive connections of a [`Fetcher`](super::Fetcher), shared by all its threads
//! without a lock held over I/O.
//!
//! ureq keeps an agent's idle connections in one pool behind one `Mutex`, and probes a pooled
//! connection for liveness (three system calls, see `socket.rs`) while it holds that lock. With
//! many workers on one agent the lock was contended on most requests, and small bodies took
//! much longer to fetch (`BENCHMARKS.md`, "HTTP benchmarks", has the figures).
//!
//! So a request borrows a whole agent, taken from the idle ones kept for its host, and gives it
//! back when it is done. Each agent keeps at most [`CONNECTIONS_PER_AGENT`] idle connections in
//! its own pool, which no other thread touches while the agent is borrowed. The lock here is held
//! only to pop and push an agent, never over a system call: agents pushed out of the cache are
//! dropped (and their connections closed) after it is released. All agents share one connector
//! chain (`transport.rs`) and one resolver cache (`resolver.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::header::PROXY_AUTHORIZATION;
use ureq::http::uri::{Authority, Scheme};

use super::FetchOptions;
use super::resolver::CachingResolver;
use super::targets::Targets;
use super::tls::{TlsConnector, TlsSettings};
use super::transport::PhaseConnector;

/// Idle connections one agent keeps: the one its last request ended on, and one more for a
/// redirect to another scheme or host (`http` to `https`, say) on the way.
const CONNECTIONS_PER_AGENT: usize = 2;

/// The most a connection's input buffer grows to (`buffers.rs`). 96 KiB holds the largest
/// response head ureq accepts (64 KiB). Larger ones were measured: 128 and 256 KiB took fewer
/// `recvfrom` calls and less CPU on large bodies but no less wall time, and would let every
/// idle connection hold more (`BENCHMARKS.md`, round three, "Bandwidth"). (With ureq's own
/// buffers, 128 KiB also sat exactly at glibc's `mmap` threshold and cost 1.8 times the CPU:
/// "HTTP benchmarks".)
const INPUT_BUFFER: usize = 96 * 1024;

/// The longest line of a request head that can be sent: 64 KiB, like the largest response head
/// ureq accepts. ureq writes the head through the connection's output buffer a line at a time
/// and fails a line longer than the buffer with `OutputOverflow`
/// ([`FetchError::RequestTooLarge`](super::FetchError::RequestTooLarge)).
pub(super) const LONGEST_LINE: usize = 64 * 1024;

/// Each connection's output buffer: 8 KiB, two pages, the longest request line nginx and Apache
/// accept by default. Every connection touches all of it (`buffers.rs`): at 64 KiB, the 16 page
/// faults of each new connection's were most of what held back the first of 50 workers. A
/// fetcher with a longer header line gives its connections a buffer that holds it; a URL with
/// a longer line is sent with one of [`LONGEST_LINE`], on a connection of its own
/// (`exchange.rs`, `output_buffer` and `Exchange::send`).
pub(super) const OUTPUT_BUFFER: usize = 8 * 1024;

/// Where an agent's last request went: the scheme and `host:port`.
type HostKey = (Scheme, Authority);

/// A fetcher's agents, and what it takes to make more.
#[derive(Debug)]
pub(super) struct Clients {
    config: Config,
    connector: PhaseConnector,
    resolver: CachingResolver,
    max_idle: usize,
    max_idle_per_host: usize,
    idle: Mutex<Idle<Agent>>,
}

impl Clients {
    /// The agents for a fetcher with `options`: every agent gets the same configuration, and
    /// `max_idle_connections` and `max_idle_connections_per_host` bound the agents kept between
    /// requests, in total and per host. `output_buffer` is the size of each connection's output
    /// buffer, which the fetcher's headers decide (`Exchange::output_buffer`).
    pub(super) fn new(options: &FetchOptions, output_buffer: usize) -> Clients {
        let targets = Arc::new(Targets::new(
            options.resolve.clone(),
            options.connect_to.clone(),
        ));
        Clients {
            config: agent_config(options, output_buffer),
            connector: PhaseConnector::new(
                TlsConnector::new(TlsSettings {
                    trust: options.trust.clone(),
                    client: options.client_cert.clone(),
                    insecure: options.insecure,
                }),
                targets.clone(),
                options.headers.contains_key(PROXY_AUTHORIZATION),
            ),
            resolver: CachingResolver::new(targets),
            max_idle: options.max_idle_connections,
            max_idle_per_host: options.max_idle_connections_per_host,
            idle: Mutex::new(Idle::default()),
        }
    }

    /// An agent for a request to `uri`: the one that last came back from its host, or a new one.
    pub(super) fn take(&self, uri: &Uri) -> Agent {
        let kept = host_key(uri).and_then(|key| self.lock().take(&key));
        kept.unwrap_or_else(|| {
            Agent::with_parts(
                self.config.clone(),
                self.connector.clone(),
                self.resolver.clone(),
            )
        })
    }

    /// Keeps `agent`, which has just fetched `uri`, for the next request to its host.
    pub(super) fn give_back(&self, uri: &Uri, agent: Agent) {
        let Some(key) = host_key(uri) else {
            return;
        };
        let dropped = self
            .lock()
            .put(key, agent, self.max_idle, self.max_idle_per_host);
        // Only now, with the lock released: closing connections is a system call.
        drop(dropped);
    }

    fn lock(&self) -> MutexGuard<'_, Idle<Agent>> {
        // Nothing that can panic runs while this lock is held.
        self.idle.lock().unwrap()
    }
}

/// The configuration of every agent: the whole timeout as its deadline, no redirects or status
/// errors of ureq's own, and buffers sized to what a connection carries (`buffers.rs`).
fn agent_config(options: &FetchOptions, output_buffer: usize) -> Config {
    let mut config = Agent::config_builder()
        .timeout_global(Some(options.timeout))
        // Status errors are made here, with the reason phrase ureq's own leave out, and
        // redirects are followed here (`Exchange::follow`): ureq hands every 3xx back as it is.
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        // Per agent: a request borrows a whole agent.
        .max_idle_connections(CONNECTIONS_PER_AGENT)
        .max_idle_connections_per_host(1)
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(output_buffer)
        // ureq would read one proxy for every scheme from the environment; `Proxies` picks
        // one per request instead (see `Exchange::send`).
        .proxy(None);
    if let Ok(user_agent) = options.user_agent.to_str() {
        // Only for a proxy's CONNECT: the requests themselves carry the fetcher's headers.
        config = config.user_agent(user_agent);
    }
    config.build()
}

fn host_key(uri: &Uri) -> Option<HostKey> {
    Some((uri.scheme()?.clone(), uri.authority()?.clone()))
}

/// FNV-1a, for the few bytes of a host key. `http` hashes an authority a byte at a time (it
/// lowercases each), and std's SipHash made that 1,600 instructions per request, for a map that
/// is looked up twice per request (`BENCHMARKS.md`, "Where the time goes"). Flooding it with
/// chosen keys is no threat: it never holds more than `max_idle_connections` of them.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Items kept per host, the most recently returned last, with the order they came back in
/// overall, so that the one idle the longest is the one to go.
#[derive(Debug)]
struct Idle<T> {
    by_host: HashMap<HostKey, Vec<(u64, T)>, std::hash::BuildHasherDefault<Fnv>>,
    count: usize,
    returned: u64,
}

impl<T> Default for Idle<T> {
    fn default() -> Self {
        Idle {
            by_host: HashMap::default(),
            count: 0,
            returned: 0,
        }
    }
}

impl<T> Idle<T> {
    /// The item returned last for `key`.
    fn take(&mut self, key: &HostKey) -> Option<T> {
        let items = self.by_host.get_mut(key)?;
        let (_, item) = items.pop()?;
        if items.is_empty() {
            self.by_host.remove(key);
        }
        self.count -= 1;
        Some(item)
    }

    /// Keeps `item` under `key`. Returns the item that no longer fits: the oldest of its host
    /// beyond `max_per_host`, or the oldest of all beyond `max`.
    fn put(&mut self, key: HostKey, item: T, max: usize, max_per_host: usize) -> Option<T> {
        if max == 0 || max_per_host == 0 {
            return Some(item);
        }
        self.returned += 1;
        let items = self.by_host.entry(key).or_default();
        items.push((self.returned, item));
        if items.len() > max_per_host {
            return Some(items.remove(0).1);
        }
        self.count += 1;
        if self.count > max {
            self.evict_oldest()
        } else {
            None
        }
    }

    fn evict_oldest(&mut self) -> Option<T> {
        let key = self
            .by_host
            .iter()
            .filter_map(|(key, items)| Some((items.first()?.0, key)))
            .min_by_key(|(returned, _)| *returned)?
            .1
            .clone();
        let items = self.by_host.get_mut(&key)?;
        let (_, item) = items.remove(0);
        if items.is_empty() {
            self.by_host.remove(&key);
        }
        self.count -= 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> HostKey {
        host_key(&url.parse().expect("test URL")).expect("scheme and host")
    }

    #[test]
    fn the_last_returned_for_a_host_comes_back_first() {
        let mut idle = Idle::default();
        assert_eq!(idle.put(key("http://a/"), 1, 10, 10), None);
        assert_eq!(idle.put(key("http://a/x"), 2, 10, 10), None);
        assert_eq!(idle.put(key("http://b/"), 3, 10, 10), None);
        assert_eq!(idle.take(&key("http://a/y")), Some(2));
        assert_eq!(idle.take(&key("http://a/")), Some(1));
        assert_eq!(idle.take(&key("http://a/")), None);
        // Scheme and port are part of the host.
        assert_eq!(idle.take(&key("https://b/")), None);
        assert_eq!(idle.take(&key("http://b:81/")), None);
        assert_eq!(idle.take(&key("http://b/")), Some(3));
        assert_eq!((idle.count, idle.by_host.len()), (0, 0));
    }

    #[test]
    fn past_the_per_host_bound_the_oldest_of_the_host_goes() {
        let mut idle = Idle::default();
        assert_eq!(idle.put(key("http://a/"), 1, 10, 2), None);
        assert_eq!(idle.put(key("http://a/"), 2, 10, 2), None);
        assert_eq!(idle.put(key("http://a/"), 3, 10, 2), Some(1));
        assert_eq!(idle.count, 2);
    }

    #[test]
    fn past_the_total_bound_the_oldest_of_all_goes() {
        let mut idle = Idle::default();
        assert_eq!(idle.put(key("http://a/"), 1, 3, 3), None);
        assert_eq!(idle.put(key("http://b/"), 2, 3, 3), None);
        assert_eq!(idle.put(key("http://a/"), 3, 3, 3), None);
        assert_eq!(idle.put(key("http://c/"), 4, 3, 3), Some(1));
        assert_eq!(idle.put(key("http://c/"), 5, 3, 3), Some(2));
        assert_eq!(idle.by_host.len(), 2, "b is gone altogether");
        assert_eq!(idle.count, 3);
    }

    #[test]
    fn nothing_is_kept_with_a_bound_of_zero() {
        let mut idle = Idle::default();
        assert_eq!(idle.put(key("http://a/"), 1, 0, 5), Some(1));
        assert_eq!(idle.put(key("http://a/"), 2, 5, 0), Some(2));
        assert_eq!(idle.count, 0);
    }
}
