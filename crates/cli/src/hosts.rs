//! Per-host politeness (`--per-host N`, `--per-host-rate N/s`): at most N requests at once to
//! one host, at most so many per second, and a host that answers `429 Too Many Requests` (or
//! `503` with `Retry-After`) slowed down.
//!
//! It is decided in the dispatcher (the main thread's run loop), never in the workers. A worker
//! that took a URL and then waited for its host's slot or token would sit idle while URLs of
//! other hosts wait behind it. So the loop asks [`Hosts::admit`] before it submits anything: a
//! URL whose host is at its limit, paused, or out of tokens is held back in that host's
//! first-in-first-out queue, and each time the host may start another request (one of its
//! requests ended, its pause is over, its next token is there) the host's next URL comes out of
//! [`Hosts::next_ready`]. The executor only ever sees URLs that may start at once, so a slow or
//! rate-limited host occupies only its own slots.
//!
//! A host is the URL's scheme, host and port ([`host_key`]). A `429` answer halves the host's
//! limit (down to 1) and pauses it: for what its `Retry-After` header asks, or else for
//! [`FIRST_PAUSE`], twice that after each further `429` in a row; never longer than
//! [`MAX_PAUSE`]. A `503` with `Retry-After` pauses it the same way. The limit grows back by one
//! after each run of `limit` answers without a throttle. Requests already in flight when the
//! first throttle came all count as one signal, as TCP counts the losses of one window.
//!
//! A pause never holds a URL past its deadline (when it was taken plus `--timeout`): the held
//! URLs a pause would keep longer are handed back at once as [`Expired`] and reported as timed
//! out, so a host that always answers `429` costs seconds, not minutes of pauses.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::rate::{Bucket, Rate};

/// How long a host is paused after a `429` without `Retry-After` that follows a good answer.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The longest pause, however many `429`s in a row and whatever `Retry-After` asks.
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

/// A host's answer that asks fetchall to slow down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttle {
    /// The status: 429, or 503.
    pub(crate) code: u16,
    /// What its `Retry-After` header asked for.
    pub(crate) retry_after: Option<Duration>,
}

impl Throttle {
    /// The throttle in a failed request's status and `Retry-After`: any `429`, and a `503`
    /// that says when to come back. `None` for every other answer.
    pub(crate) fn of(status: Option<u16>, retry_after: Option<Duration>) -> Option<Throttle> {
        let code = status?;
        match (code, retry_after) {
            (429, _) | (503, Some(_)) => Some(Throttle { code, retry_after }),
            _ => None,
        }
    }
}

/// Why a host is paused: the status that paused it, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pause {
    /// The status that asked for it.
    pub(crate) code: u16,
    /// How long the host is paused for.
    pub(crate) length: Duration,
}

impl fmt::Display for Pause {
    /// `paused 2.0s after HTTP 429`: the words of a held URL's time-out message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let length = if self.length < Duration::from_secs(1) {
            format!("{}ms", self.length.as_millis())
        } else {
            format!("{:.1}s", self.length.as_secs_f64())
        };
        write!(f, "paused {length} after HTTP {}", self.code)
    }
}

/// A held item that a pause of its host would keep past its deadline, handed back to be
/// reported as timed out.
#[derive(Debug)]
pub(crate) struct Expired<T> {
    /// The item, as admitted.
    pub(crate) item: T,
    /// The pause it could not wait for.
    pub(crate) pause: Pause,
}

/// What [`Hosts::admit`] did with an item.
#[derive(Debug)]
pub(crate) enum Admit<T> {
    /// It may start now: the item and its slot.
    Start(T, Slot),
    /// It waits for its host, behind the host's other held items.
    Held,
    /// Its host is paused past the item's deadline.
    Expired(Expired<T>),
}

/// The per-host limits, and the URLs held back for them. `T` is what the run loop holds back.
#[derive(Debug)]
pub(crate) struct Hosts<T> {
    /// Requests at once per host; `None`: no limit (only `--per-host-rate` or pauses).
    limit: Option<usize>,
    rate: Option<Rate>,
    hosts: HashMap<Rc<str>, Host<T>>,
    /// Hosts that have held URLs and may start one now, each at most once (`Host::in_ready`),
    /// in turn: a host that starts one goes to the back.
    ready: VecDeque<Rc<str>>,
    /// When paused or token-less hosts may start again, soonest first. An entry whose host has
    /// been paused again since, or removed, is stale and harmless: it only causes an early look.
    wake: BinaryHeap<Reverse<(Instant, Rc<str>)>>,
    held: usize,
}

/// An item held back, and the moment past which it must not be held.
#[derive(Debug)]
struct Waiting<T> {
    item: T,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Host<T> {
    /// Requests allowed at once now: the limit, or less after a throttle; `None`: no limit.
    cap: Option<usize>,
    /// Requests submitted and not released.
    active: usize,
    queue: VecDeque<Waiting<T>>,
    /// Until when, and why, the host is paused.
    paused: Option<(Instant, Pause)>,
    /// With `--per-host-rate`: the host's own token.
    bucket: Option<Bucket>,
    /// The wake-up last pushed for this host, so that it is pushed once per instant.
    wake_at: Option<Instant>,
    in_ready: bool,
    /// Bumped at each slow-down; a request remembers the epoch it started in.
    epoch: u64,
    /// Answers without a throttle to requests of this epoch.
    calm: usize,
    /// Slow-downs since the last good answer: the pause doubles with each.
    strikes: u32,
}

impl<T> Host<T> {
    fn new(cap: Option<usize>, rate: Option<Rate>) -> Host<T> {
        Host {
            cap,
            active: 0,
            queue: VecDeque::new(),
            paused: None,
            bucket: rate.map(Bucket::new),
            wake_at: None,
            in_ready: false,
            epoch: 0,
            calm: 0,
            strikes: 0,
        }
    }

    /// When the host may start a request, as far as time goes: `None` now, else the end of its
    /// pause or the arrival of its token, whichever is later.
    fn blocked_until(&self, now: Instant) -> Option<Instant> {
        let paused = self.paused.map(|(until, _)| until).filter(|&at| at > now);
        let token = self.bucket.as_ref().and_then(|b| b.ready_at(now));
        paused.max(token)
    }

    fn has_room(&self) -> bool {
        self.cap.is_none_or(|cap| self.active < cap)
    }

    fn can_start(&self, now: Instant) -> bool {
        self.has_room() && self.blocked_until(now).is_none()
    }

    /// Counts a request as started: a slot, and the host's token.
    fn start(&mut self, key: &Rc<str>, now: Instant) -> Slot {
        self.active += 1;
        if let Some(bucket) = self.bucket.as_mut() {
            bucket.try_take(now);
        }
        Slot {
            key: key.clone(),
            epoch: self.epoch,
        }
    }

    /// Nothing held, nothing running, nothing remembered that a fresh host would not have.
    fn forgettable(&self, limit: Option<usize>, now: Instant) -> bool {
        self.active == 0
            && self.queue.is_empty()
            && self.cap == limit
            && self.blocked_until(now).is_none()
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
    /// No host may have more than `limit` requests at once (`None`: no such limit) nor start
    /// them faster than `rate`.
    pub(crate) fn new(limit: Option<NonZeroUsize>, rate: Option<Rate>) -> Hosts<T> {
        Hosts {
            limit: limit.map(NonZeroUsize::get),
            rate,
            hosts: HashMap::new(),
            ready: VecDeque::new(),
            wake: BinaryHeap::new(),
            held: 0,
        }
    }

    /// Offers `item` for host `key`: [`Admit::Start`] with its slot if it may start now, else
    /// held back (behind the host's other held URLs) for [`next_ready`](Self::next_ready), or
    /// [`Admit::Expired`] if its host is paused past `deadline`.
    pub(crate) fn admit(
        &mut self,
        key: &str,
        item: T,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Admit<T> {
        let (limit, rate) = (self.limit, self.rate);
        let key: Rc<str> = match self.hosts.get_key_value(key) {
            Some((known, _)) => known.clone(),
            None => key.into(),
        };
        let host = self
            .hosts
            .entry(key.clone())
            .or_insert_with(|| Host::new(limit, rate));
        if host.queue.is_empty() && host.can_start(now) {
            return Admit::Start(item, host.start(&key, now));
        }
        if let Some((until, pause)) = host.paused {
            if deadline.is_some_and(|d| d < until) {
                return Admit::Expired(Expired { item, pause });
            }
        }
        host.queue.push_back(Waiting { item, deadline });
        self.held += 1;
        self.mark_ready(&key, now);
        Admit::Held
    }

    /// A held item that may start now, with its slot; hosts take turns.
    pub(crate) fn next_ready(&mut self, now: Instant) -> Option<(T, Slot)> {
        while let Some(Reverse((at, _))) = self.wake.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, key))) = self.wake.pop() {
                self.forget_if_idle(&key, now);
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
            let Some(waiting) = host.queue.pop_front() else {
                continue;
            };
            self.held -= 1;
            let slot = host.start(&key, now);
            self.mark_ready(&key, now);
            return Some((waiting.item, slot));
        }
        None
    }

    /// Gives back a finished request's slot, with the throttle its answer carried if any.
    /// Returns the held items of the host that a new pause would keep past their deadlines.
    pub(crate) fn release(
        &mut self,
        slot: Slot,
        throttle: Option<Throttle>,
        now: Instant,
    ) -> Vec<Expired<T>> {
        let limit = self.limit;
        let mut expired = Vec::new();
        // A host with a request out is never removed.
        let Some(host) = self.hosts.get_mut(&slot.key) else {
            return expired;
        };
        host.active -= 1;
        let current = slot.epoch == host.epoch;
        match throttle {
            // Requests sent before the last slow-down already counted in it.
            Some(throttle) if current => {
                host.epoch += 1;
                host.cap = host.cap.map(|cap| (cap / 2).max(1));
                host.calm = 0;
                host.strikes = host.strikes.saturating_add(1);
                let doublings = (host.strikes - 1).min(16);
                let length = throttle
                    .retry_after
                    .unwrap_or_else(|| FIRST_PAUSE.saturating_mul(1 << doublings))
                    .min(MAX_PAUSE);
                let pause = Pause {
                    code: throttle.code,
                    length,
                };
                let until = now + length;
                host.paused = Some((until, pause));
                Self::wake_at(&mut self.wake, host, &slot.key, until);
                // The held items that cannot wait that long leave now, not at their deadline.
                let (gone, kept) = std::mem::take(&mut host.queue)
                    .into_iter()
                    .partition(|w| w.deadline.is_some_and(|d| d < until));
                host.queue = kept;
                expired.extend(gone.into_iter().map(|w: Waiting<T>| Expired {
                    item: w.item,
                    pause,
                }));
                self.held -= expired.len();
                tracing::debug!(
                    host = %slot.key, cap = host.cap, ?length, expired = expired.len(),
                    "{}: pausing the host", throttle.code
                );
            }
            Some(_) => {}
            None if current => {
                // Only answers to requests sent since the last slow-down say the host has
                // recovered.
                host.strikes = 0;
                host.calm += 1;
                if let (Some(cap), Some(limit)) = (host.cap, limit) {
                    if host.calm >= cap && cap < limit {
                        host.cap = Some(cap + 1);
                        host.calm = 0;
                    }
                }
            }
            None => {}
        }
        self.forget_if_idle(&slot.key, now);
        self.mark_ready(&slot.key, now);
        expired
    }

    /// How many items are held back.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// When a paused or token-less host may start again, if one is waiting for that.
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
                host.queue.drain(..).map(|w| w.item)
            })
            .collect()
    }

    /// Removes an idle host with nothing to remember, so that the map stays small; a host seen
    /// again starts afresh. One that still waits for its token or the end of a pause is kept
    /// until then (a wake-up is set), or a URL read later would skip its wait.
    fn forget_if_idle(&mut self, key: &Rc<str>, now: Instant) {
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        if host.forgettable(self.limit, now) {
            self.hosts.remove(key);
        } else if host.active == 0 && host.queue.is_empty() {
            if let Some(at) = host.blocked_until(now) {
                Self::wake_at(&mut self.wake, host, key, at);
            }
        }
    }

    /// Puts `key` in the ready queue if it has held items and may start one now, and is not
    /// there; sets its wake-up if it has held items, a free slot, and must wait for the clock.
    fn mark_ready(&mut self, key: &Rc<str>, now: Instant) {
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        if host.in_ready || host.queue.is_empty() || !host.has_room() {
            return;
        }
        match host.blocked_until(now) {
            None => {
                host.in_ready = true;
                self.ready.push_back(key.clone());
            }
            Some(at) => Self::wake_at(&mut self.wake, host, key, at),
        }
    }

    fn wake_at(
        wake: &mut BinaryHeap<Reverse<(Instant, Rc<str>)>>,
        host: &mut Host<T>,
        key: &Rc<str>,
        at: Instant,
    ) {
        if host.wake_at != Some(at) {
            host.wake_at = Some(at);
            wake.push(Reverse((at, key.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(limit: usize) -> Hosts<u32> {
        Hosts::new(NonZeroUsize::new(limit), None)
    }

    /// A 429 without Retry-After.
    const TOO_MANY: Option<Throttle> = Some(Throttle {
        code: 429,
        retry_after: None,
    });

    impl Hosts<u32> {
        /// Admits an item that must start at once (no deadline).
        fn start(&mut self, key: &str, item: u32, now: Instant) -> Slot {
            match self.admit(key, item, None, now) {
                Admit::Start(got, slot) if got == item => slot,
                other => panic!("{item} did not start: {other:?}"),
            }
        }

        /// Admits an item that must be held back (no deadline).
        fn hold(&mut self, key: &str, item: u32, now: Instant) {
            let admitted = self.admit(key, item, None, now);
            assert!(matches!(admitted, Admit::Held), "{item}: {admitted:?}");
        }
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
        let a1 = h.start("a", 1, now);
        let a2 = h.start("a", 2, now);
        h.hold("a", 3, now);
        h.hold("a", 4, now);
        assert_eq!(h.held(), 2);
        assert!(h.next_ready(now).is_none(), "a is full");
        // Another host is not held up by a.
        let b = h.start("b", 10, now);
        assert!(h.release(a2, None, now).is_empty());
        let (item, a3) = h.next_ready(now).unwrap();
        assert_eq!(item, 3);
        assert!(h.next_ready(now).is_none());
        // A new URL of a waits behind the held one even when a slot is free.
        h.release(a1, None, now);
        h.hold("a", 5, now);
        assert_eq!(h.next_ready(now).map(|(i, _)| i), Some(4));
        assert!(h.next_ready(now).is_none());
        h.release(a3, None, now);
        let (item, _a5) = h.next_ready(now).unwrap();
        assert_eq!((item, h.held()), (5, 0));
        h.release(b, None, now);
        assert!(!h.hosts.contains_key("b"), "an idle host is forgotten");
    }

    /// Hosts "a" and "b" with limit 1, each running one item (0) and holding three more
    /// (1 to 3 for "a", 11 to 13 for "b"); their slots.
    fn two_busy_hosts(now: Instant) -> (Hosts<u32>, Slot, Slot) {
        let mut h = hosts(1);
        let a = h.start("a", 0, now);
        let b = h.start("b", 0, now);
        for i in 1..=3 {
            h.hold("a", i, now);
            h.hold("b", 10 + i, now);
        }
        (h, a, b)
    }

    #[test]
    fn ready_hosts_take_turns() {
        let now = Instant::now();
        let (mut h, a, b) = two_busy_hosts(now);
        h.release(a, None, now);
        h.release(b, None, now);
        let (first, a) = h.next_ready(now).unwrap();
        let (second, b) = h.next_ready(now).unwrap();
        assert_eq!((first, second), (1, 11));
        h.release(b, None, now);
        h.release(a, None, now);
        assert_eq!(h.next_ready(now).map(|(i, _)| i), Some(12));
    }

    #[test]
    fn a_429_halves_the_cap_pauses_the_host_and_counts_once_per_window() {
        let t0 = Instant::now();
        let mut h = hosts(4);
        let slots: Vec<Slot> = (0..4).map(|i| h.start("a", i, t0)).collect();
        for i in 4..10 {
            h.hold("a", i, t0);
        }
        // All four in flight are answered 429: one slow-down, not four.
        for slot in slots {
            h.release(slot, TOO_MANY, t0);
        }
        assert_eq!(h.hosts["a"].cap.unwrap(), 2);
        assert_eq!(h.next_wake(), Some(t0 + FIRST_PAUSE));
        assert!(h.next_ready(t0).is_none(), "paused");
        assert!(h.next_ready(t0 + FIRST_PAUSE / 2).is_none(), "still paused");
        let t1 = t0 + FIRST_PAUSE;
        let (_, s1) = h.next_ready(t1).unwrap();
        let (_, s2) = h.next_ready(t1).unwrap();
        assert!(h.next_ready(t1).is_none(), "the cap is 2 now");
        // A second 429 in a row: cap 1, twice the pause.
        h.release(s1, TOO_MANY, t1);
        assert_eq!(h.hosts["a"].cap.unwrap(), 1);
        assert_eq!(h.next_wake(), Some(t1 + 2 * FIRST_PAUSE));
        // A good answer to a request sent before the slow-down is no sign of recovery.
        h.release(s2, None, t1);
        assert_eq!(h.hosts["a"].cap.unwrap(), 1);
        let t2 = t1 + 2 * FIRST_PAUSE;
        let (_, s3) = h.next_ready(t2).unwrap();
        assert!(h.next_ready(t2).is_none());
        // A good answer at cap 1 grows it to 2; the next 429 pauses for FIRST_PAUSE again.
        h.release(s3, None, t2);
        assert_eq!(h.hosts["a"].cap.unwrap(), 2);
        let (_, s4) = h.next_ready(t2).unwrap();
        let (_, s5) = h.next_ready(t2).unwrap();
        h.release(s4, None, t2);
        h.release(s5, None, t2);
        assert_eq!(h.hosts["a"].cap.unwrap(), 3);
        let (_, s6) = h.next_ready(t2).unwrap();
        h.release(s6, TOO_MANY, t2);
        assert_eq!(h.next_wake(), Some(t2 + FIRST_PAUSE));
    }

    #[test]
    fn pauses_double_up_to_the_maximum() {
        let mut now = Instant::now();
        let mut h = hosts(1);
        let mut slot = h.start("a", 0, now);
        let mut pauses = Vec::new();
        for i in 1..=9 {
            h.hold("a", i, now);
            h.release(slot, TOO_MANY, now);
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

    #[test]
    fn throttles_are_429s_and_503s_that_say_when_to_come_back() {
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(Throttle::of(Some(429), None), TOO_MANY);
        assert_eq!(
            Throttle::of(Some(503), secs(3)),
            Some(Throttle {
                code: 503,
                retry_after: secs(3)
            })
        );
        assert_eq!(Throttle::of(Some(503), None), None);
        assert_eq!(Throttle::of(Some(500), secs(3)), None);
        assert_eq!(Throttle::of(None, None), None);
        let pause = |ms, code| Pause {
            code,
            length: Duration::from_millis(ms),
        };
        assert_eq!(pause(2000, 429).to_string(), "paused 2.0s after HTTP 429");
        assert_eq!(pause(250, 503).to_string(), "paused 250ms after HTTP 503");
    }

    #[test]
    fn retry_after_sets_the_pause_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut h = hosts(1);
        let a = h.start("a", 0, t0);
        h.hold("a", 1, t0);
        let asked = |secs| {
            Some(Throttle {
                code: 503,
                retry_after: Some(Duration::from_secs(secs)),
            })
        };
        h.release(a, asked(5), t0);
        assert_eq!(h.next_wake(), Some(t0 + Duration::from_secs(5)));
        assert!(h.next_ready(t0 + Duration::from_secs(4)).is_none());
        let (item, a) = h.next_ready(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(item, 1);
        h.hold("a", 2, t0);
        let t1 = t0 + Duration::from_secs(5);
        h.release(a, asked(3600), t1);
        assert_eq!(h.next_wake(), Some(t1 + MAX_PAUSE));
    }

    #[test]
    fn a_pause_hands_back_the_held_items_it_would_keep_past_their_deadline() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let mut h = hosts(1);
        let a = h.start("a", 0, t0);
        for (item, deadline) in [(1, 2), (2, 10), (3, 1)] {
            let admitted = h.admit("a", item, Some(t0 + secs(deadline)), t0);
            assert!(matches!(admitted, Admit::Held));
        }
        let asked = Some(Throttle {
            code: 429,
            retry_after: Some(secs(5)),
        });
        let expired = h.release(a, asked, t0);
        let mut gone: Vec<u32> = expired.iter().map(|e| e.item).collect();
        gone.sort_unstable();
        assert_eq!(gone, [1, 3]);
        let pause = Pause {
            code: 429,
            length: secs(5),
        };
        assert!(expired.iter().all(|e| e.pause == pause));
        assert_eq!(h.held(), 1);
        // While paused, a newcomer that cannot wait is handed back at once; one that can waits.
        match h.admit("a", 4, Some(t0 + secs(3)), t0 + secs(1)) {
            Admit::Expired(e) => assert_eq!((e.item, e.pause), (4, pause)),
            other => panic!("{other:?}"),
        }
        let admitted = h.admit("a", 5, None, t0 + secs(1));
        assert!(matches!(admitted, Admit::Held));
        assert_eq!(h.next_ready(t0 + secs(5)).map(|(i, _)| i), Some(2));
    }

    #[test]
    fn a_host_always_answering_429_does_not_hold_its_urls_for_long() {
        // --per-host 2 -t 2, nine URLs, every answer a 429 without Retry-After.
        let t0 = Instant::now();
        let deadline = Some(t0 + Duration::from_secs(2));
        let mut h = hosts(2);
        let mut running = Vec::new();
        for item in 0..9 {
            match h.admit("a", item, deadline, t0) {
                Admit::Start(_, slot) => running.push(slot),
                Admit::Held => {}
                Admit::Expired(e) => panic!("{e:?}"),
            }
        }
        let mut now = t0;
        let mut reported = 0;
        // Bounded: each turn answers every running request, or moves the clock to a wake-up.
        for _ in 0..20 {
            for slot in std::mem::take(&mut running) {
                reported += 1 + h.release(slot, TOO_MANY, now).len();
            }
            while let Some((_, slot)) = h.next_ready(now) {
                running.push(slot);
            }
            if running.is_empty() {
                match h.next_wake() {
                    Some(at) if h.held() > 0 => now = at,
                    _ => break,
                }
            }
        }
        assert_eq!((reported, h.held()), (9, 0));
        assert!(now - t0 <= Duration::from_secs(2), "{:?}", now - t0);
    }

    #[test]
    fn per_host_rate_spaces_a_hosts_requests_and_lets_other_hosts_go() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h: Hosts<u32> = Hosts::new(None, Some("2/s".parse().unwrap()));
        let a0 = h.start("a", 0, t0);
        h.hold("a", 1, t0);
        h.hold("a", 2, t0);
        // No concurrency limit, but a's next token is 500ms away; b has its own.
        let b0 = h.start("b", 10, t0);
        assert!(h.next_ready(t0).is_none());
        assert_eq!(h.next_wake(), Some(t0 + ms(500)));
        assert!(h.next_ready(t0 + ms(499)).is_none());
        let (item, a1) = h.next_ready(t0 + ms(500)).unwrap();
        assert_eq!(item, 1);
        assert!(
            h.next_ready(t0 + ms(500)).is_none(),
            "one token per interval"
        );
        let (item, a2) = h.next_ready(t0 + ms(1000)).unwrap();
        assert_eq!(item, 2);
        for slot in [a0, a1, a2, b0] {
            h.release(slot, None, t0 + ms(1000));
        }
        // An idle host is remembered until its token is back, then forgotten.
        assert!(h.hosts.contains_key("a"));
        match h.admit("a", 3, None, t0 + ms(1200)) {
            Admit::Held => {}
            other => panic!("a URL read later skipped the wait: {other:?}"),
        }
        let (_, a3) = h.next_ready(t0 + ms(1500)).unwrap();
        h.release(a3, None, t0 + ms(1500));
        assert!(h.next_ready(t0 + ms(2000)).is_none());
        assert!(
            !h.hosts.contains_key("a"),
            "forgotten once its token is back"
        );
        assert!(!h.hosts.contains_key("b"));
    }

    #[test]
    fn without_a_limit_a_429_pauses_but_caps_nothing() {
        let t0 = Instant::now();
        let mut h: Hosts<u32> = Hosts::new(None, None);
        let slots: Vec<Slot> = (0..5).map(|i| h.start("a", i, t0)).collect();
        for slot in slots {
            h.release(slot, TOO_MANY, t0);
        }
        h.hold("a", 9, t0 + FIRST_PAUSE / 2);
        assert_eq!(h.hosts["a"].cap, None);
        assert!(h.next_ready(t0).is_none());
        assert_eq!(h.next_ready(t0 + FIRST_PAUSE).map(|(i, _)| i), Some(9));
    }
}
