//! Per-host politeness (`--per-host N`): at most N requests at once to one host, and a host that
//! answers `429 Too Many Requests` slowed down.
//!
//! It is decided in the dispatcher (the main thread's run loop), never in the workers. A worker
//! that took a URL and then waited for its host's slot would sit idle while URLs of other hosts
//! wait behind it. So the loop asks [`Hosts::admit`] before it submits anything: a URL whose host
//! is at its limit is held back in that host's first-in-first-out queue, and each time one of the
//! host's requests ends ([`Hosts::release`]) the host's next URL comes out of
//! [`Hosts::next_ready`]. The executor only ever sees URLs that may start at once, so a slow or
//! rate-limited host occupies only its own slots.
//!
//! A host is the URL's scheme, host and port ([`host_key`]). A `429` answer halves the host's
//! limit (down to 1) and pauses it for [`FIRST_PAUSE`], twice that after each further `429` in a
//! row, up to [`MAX_PAUSE`]; the limit grows back by one after each run of `limit` answers
//! without a `429`. Requests already in flight when the first `429` came all count as one
//! signal, as TCP counts the losses of one window. `Retry-After` is not honoured here: the
//! failure the run loop sees carries the status code only.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a host is paused after a `429` that follows a good answer.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause, however many `429`s in a row.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The most URLs held back for all hosts together. When it is reached the run loop stops taking
/// input lines (and the reader stops reading) until a held URL is submitted.
pub(crate) const MAX_HELD: usize = 4096;

/// The host a URL's requests count against: `scheme://host:port`, lowercased, with the scheme's
/// default port filled in. `None` for what is not an `http` or `https` URL (it fails without a
/// request, so it needs no slot).
pub(crate) fn host_key(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    // The parser has lowercased the scheme and the host, and put IPv6 hosts in brackets.
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

/// The per-host limits, and the URLs held back for them. `T` is what the run loop holds back.
#[derive(Debug)]
pub(crate) struct Hosts<T> {
    limit: usize,
    hosts: HashMap<Rc<str>, Host<T>>,
    /// Hosts that have held URLs and may start one now, each at most once (`Host::in_ready`),
    /// in turn: a host that starts one goes to the back.
    ready: VecDeque<Rc<str>>,
    /// When paused hosts may start again, soonest first. An entry whose host has been paused
    /// again since, or removed, is stale and harmless: it only causes an early look.
    wake: BinaryHeap<Reverse<(Instant, Rc<str>)>>,
    held: usize,
}

#[derive(Debug)]
struct Host<T> {
    /// Requests allowed at once now: `limit`, or less after a `429`.
    cap: usize,
    /// Requests submitted and not released.
    active: usize,
    queue: VecDeque<T>,
    paused_until: Option<Instant>,
    in_ready: bool,
    /// Bumped at each slow-down; a request remembers the epoch it started in.
    epoch: u64,
    /// Answers without a `429` to requests of this epoch.
    calm: usize,
    /// Slow-downs since the last good answer: the pause doubles with each.
    strikes: u32,
}

impl<T> Host<T> {
    fn new(cap: usize) -> Host<T> {
        Host {
            cap,
            active: 0,
            queue: VecDeque::new(),
            paused_until: None,
            in_ready: false,
            epoch: 0,
            calm: 0,
            strikes: 0,
        }
    }

    fn can_start(&self, now: Instant) -> bool {
        self.active < self.cap && self.paused_until.is_none_or(|until| until <= now)
    }
}

/// One request's claim on its host's slot, handed back to [`Hosts::release`] when it ends.
#[derive(Debug)]
#[must_use = "a slot not released is never given to another URL"]
pub(crate) struct Slot {
    key: Rc<str>,
    epoch: u64,
}

impl<T> Hosts<T> {
    /// No host may have more than `limit` requests at once.
    pub(crate) fn new(limit: NonZeroUsize) -> Hosts<T> {
        Hosts {
            limit: limit.get(),
            hosts: HashMap::new(),
            ready: VecDeque::new(),
            wake: BinaryHeap::new(),
            held: 0,
        }
    }

    /// Offers `item` for host `key`: back with its slot if it may start now, `None` if it is held
    /// back (behind the host's other held URLs) for [`next_ready`](Self::next_ready).
    pub(crate) fn admit(&mut self, key: &str, item: T, now: Instant) -> Option<(T, Slot)> {
        let limit = self.limit;
        let key: Rc<str> = match self.hosts.get_key_value(key) {
            Some((known, _)) => known.clone(),
            None => key.into(),
        };
        let host = self
            .hosts
            .entry(key.clone())
            .or_insert_with(|| Host::new(limit));
        if host.queue.is_empty() && host.can_start(now) {
            host.active += 1;
            let epoch = host.epoch;
            return Some((item, Slot { key, epoch }));
        }
        host.queue.push_back(item);
        self.held += 1;
        self.mark_ready(&key, now);
        None
    }

    /// A held item that may start now, with its slot; hosts take turns.
    pub(crate) fn next_ready(&mut self, now: Instant) -> Option<(T, Slot)> {
        while let Some(Reverse((at, _))) = self.wake.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, key))) = self.wake.pop() {
                self.mark_ready(&key, now);
            }
        }
        while let Some(key) = self.ready.pop_front() {
            let Some(host) = self.hosts.get_mut(&key) else {
                continue;
            };
            host.in_ready = false;
            if !host.can_start(now) {
                // Paused since it was queued: its wake-up brings it back.
                continue;
            }
            let Some(item) = host.queue.pop_front() else {
                continue;
            };
            self.held -= 1;
            host.active += 1;
            let slot = Slot {
                key: key.clone(),
                epoch: host.epoch,
            };
            self.mark_ready(&key, now);
            return Some((item, slot));
        }
        None
    }

    /// Gives back a finished request's slot; `throttled` if it was answered `429`.
    pub(crate) fn release(&mut self, slot: Slot, throttled: bool, now: Instant) {
        let limit = self.limit;
        // A host with a request out is never removed.
        let Some(host) = self.hosts.get_mut(&slot.key) else {
            return;
        };
        host.active -= 1;
        let current = slot.epoch == host.epoch;
        if throttled {
            // Requests sent before the last slow-down already counted in it.
            if current {
                host.epoch += 1;
                host.cap = (host.cap / 2).max(1);
                host.calm = 0;
                host.strikes = host.strikes.saturating_add(1);
                let doublings = (host.strikes - 1).min(16);
                let pause = FIRST_PAUSE.saturating_mul(1 << doublings).min(MAX_PAUSE);
                let until = now + pause;
                host.paused_until = Some(until);
                self.wake.push(Reverse((until, slot.key.clone())));
                tracing::debug!(host = %slot.key, cap = host.cap, ?pause, "429: slowing down");
            }
        } else if current {
            // Only answers to requests sent since the last slow-down say the host has recovered.
            host.strikes = 0;
            host.calm += 1;
            if host.calm >= host.cap && host.cap < limit {
                host.cap += 1;
                host.calm = 0;
            }
        }
        let idle = host.active == 0 && host.queue.is_empty();
        let recovered = host.cap == limit && host.paused_until.is_none_or(|until| until <= now);
        if idle && recovered {
            // Nothing to remember: a host seen again starts afresh, and the map stays small.
            self.hosts.remove(&slot.key);
        } else {
            self.mark_ready(&slot.key, now);
        }
    }

    /// How many items are held back.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// When a paused host may start again, if one is paused.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.wake.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes every held item out (after Ctrl-C), in no particular order.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.ready.clear();
        self.held = 0;
        self.hosts
            .values_mut()
            .flat_map(|host| {
                host.in_ready = false;
                host.queue.drain(..)
            })
            .collect()
    }

    /// Puts `key` in the ready queue if it has held items, may start one now, and is not there.
    fn mark_ready(&mut self, key: &Rc<str>, now: Instant) {
        if let Some(host) = self.hosts.get_mut(key) {
            if !host.in_ready && !host.queue.is_empty() && host.can_start(now) {
                host.in_ready = true;
                self.ready.push_back(key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(limit: usize) -> Hosts<u32> {
        Hosts::new(NonZeroUsize::new(limit).unwrap())
    }

    #[test]
    fn keys_are_scheme_host_and_port() {
        let key = |url| host_key(url);
        assert_eq!(
            key("http://Example.COM/a"),
            Some("http://example.com:80".into())
        );
        assert_eq!(key("HTTP://example.com:80/b?c"), key("http://example.com/"));
        assert_eq!(
            key("https://example.com/"),
            Some("https://example.com:443".into())
        );
        assert_ne!(key("http://example.com:8080/"), key("http://example.com/"));
        assert_eq!(
            key("http://127.0.0.1:5/"),
            Some("http://127.0.0.1:5".into())
        );
        assert_eq!(key("http://[::1]:5/"), Some("http://[::1]:5".into()));
        assert_eq!(key("http://user:pw@h/"), Some("http://h:80".into()));
        for invalid in ["not a url", "ftp://h/", "http://", "mailto:a@b", ""] {
            assert_eq!(key(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn a_host_at_its_limit_holds_urls_in_order_and_others_go_ahead() {
        let now = Instant::now();
        let mut h = hosts(2);
        let a1 = h.admit("a", 1, now).unwrap();
        let a2 = h.admit("a", 2, now).unwrap();
        assert!(h.admit("a", 3, now).is_none());
        assert!(h.admit("a", 4, now).is_none());
        assert_eq!(h.held(), 2);
        assert!(h.next_ready(now).is_none(), "a is full");
        // Another host is not held up by a.
        let b = h.admit("b", 10, now).unwrap();
        assert_eq!(b.0, 10);
        h.release(a2.1, false, now);
        let (item, a3) = h.next_ready(now).unwrap();
        assert_eq!(item, 3);
        assert!(h.next_ready(now).is_none());
        // A new URL of a waits behind the held one even when a slot is free.
        h.release(a1.1, false, now);
        assert!(h.admit("a", 5, now).is_none());
        assert_eq!(h.next_ready(now).map(|(i, _)| i), Some(4));
        assert!(h.next_ready(now).is_none());
        h.release(a3, false, now);
        let (item, _a5) = h.next_ready(now).unwrap();
        assert_eq!((item, h.held()), (5, 0));
        h.release(b.1, false, now);
        assert!(!h.hosts.contains_key("b"), "an idle host is forgotten");
    }

    /// Hosts "a" and "b" with limit 1, each running one item (0) and holding three more
    /// (1 to 3 for "a", 11 to 13 for "b"); their slots.
    fn two_busy_hosts(now: Instant) -> (Hosts<u32>, Slot, Slot) {
        let mut h = hosts(1);
        let a = h.admit("a", 0, now).unwrap().1;
        let b = h.admit("b", 0, now).unwrap().1;
        for i in 1..=3 {
            assert!(h.admit("a", i, now).is_none());
            assert!(h.admit("b", 10 + i, now).is_none());
        }
        (h, a, b)
    }

    #[test]
    fn ready_hosts_take_turns() {
        let now = Instant::now();
        let (mut h, a, b) = two_busy_hosts(now);
        h.release(a, false, now);
        h.release(b, false, now);
        let (first, a) = h.next_ready(now).unwrap();
        let (second, b) = h.next_ready(now).unwrap();
        assert_eq!((first, second), (1, 11));
        h.release(b, false, now);
        h.release(a, false, now);
        assert_eq!(h.next_ready(now).map(|(i, _)| i), Some(12));
    }

    #[test]
    fn a_429_halves_the_cap_pauses_the_host_and_counts_once_per_window() {
        let t0 = Instant::now();
        let mut h = hosts(4);
        let slots: Vec<Slot> = (0..4).map(|i| h.admit("a", i, t0).unwrap().1).collect();
        for i in 4..10 {
            assert!(h.admit("a", i, t0).is_none());
        }
        // All four in flight are answered 429: one slow-down, not four.
        for slot in slots {
            h.release(slot, true, t0);
        }
        assert_eq!(h.hosts["a"].cap, 2);
        assert_eq!(h.next_wake(), Some(t0 + FIRST_PAUSE));
        assert!(h.next_ready(t0).is_none(), "paused");
        assert!(h.next_ready(t0 + FIRST_PAUSE / 2).is_none(), "still paused");
        let t1 = t0 + FIRST_PAUSE;
        let (_, s1) = h.next_ready(t1).unwrap();
        let (_, s2) = h.next_ready(t1).unwrap();
        assert!(h.next_ready(t1).is_none(), "the cap is 2 now");
        // A second 429 in a row: cap 1, twice the pause.
        h.release(s1, true, t1);
        assert_eq!(h.hosts["a"].cap, 1);
        assert_eq!(h.next_wake(), Some(t1 + 2 * FIRST_PAUSE));
        // A good answer to a request sent before the slow-down is no sign of recovery.
        h.release(s2, false, t1);
        assert_eq!(h.hosts["a"].cap, 1);
        let t2 = t1 + 2 * FIRST_PAUSE;
        let (_, s3) = h.next_ready(t2).unwrap();
        assert!(h.next_ready(t2).is_none());
        // A good answer at cap 1 grows it to 2; the next 429 pauses for FIRST_PAUSE again.
        h.release(s3, false, t2);
        assert_eq!(h.hosts["a"].cap, 2);
        let (_, s4) = h.next_ready(t2).unwrap();
        let (_, s5) = h.next_ready(t2).unwrap();
        h.release(s4, false, t2);
        h.release(s5, false, t2);
        assert_eq!(h.hosts["a"].cap, 3);
        let (_, s6) = h.next_ready(t2).unwrap();
        h.release(s6, true, t2);
        assert_eq!(h.next_wake(), Some(t2 + FIRST_PAUSE));
    }

    #[test]
    fn pauses_double_up_to_the_maximum() {
        let mut now = Instant::now();
        let mut h = hosts(1);
        let mut slot = h.admit("a", 0, now).unwrap().1;
        let mut pauses = Vec::new();
        for i in 1..=9 {
            assert!(h.admit("a", i, now).is_none());
            h.release(slot, true, now);
            let wake = h.next_wake().unwrap();
            pauses.push((wake - now).as_secs());
            now = wake;
            slot = h.next_ready(now).unwrap().1;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn drain_takes_every_held_item() {
        let now = Instant::now();
        let (mut h, _a, _b) = two_busy_hosts(now);
        let mut held = h.drain();
        held.sort_unstable();
        assert_eq!(held, [1, 2, 3, 11, 12, 13]);
        assert_eq!(h.held(), 0);
        assert!(h.next_ready(now).is_none());
    }
}
