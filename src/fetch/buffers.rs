//! A connection's buffers, sized to what the connection carries.
//!
//! ureq's `LazyBuffers` fills both buffers with zeros at their full size on the first request:
//! 96 KiB in and 64 KiB out per connection with the sizes fetchall first gave them, every page
//! touched. With many hosts that is most of
//! the memory (128 idle connections hold 20 MiB) and, on a new connection, 40 page faults
//! (`BENCHMARKS.md`, "Many hosts"). Here the input buffer starts at [`INITIAL_INPUT`] and
//! doubles, up to the configured size, whenever a read fills it: small responses never need
//! more, a large body or head grows it within a few reads. The output buffer is allocated at its
//! configured size, which ureq needs the longest line of a request head to fit in; the fetcher
//! keeps it to a few pages (`clients.rs`).
//!
//! Small first sizes matter more than they seem: `vec![0; n]` asks the allocator for zeroed
//! memory, but glibc clears it with `memset` unless it comes straight from the kernel, and a
//! worker thread's allocations come from its own arena, so every page of a new connection's
//! buffers is touched at once. 50 workers opening their first connections together spent half
//! their time in those page faults (`BENCHMARKS.md`, round four).
//!
//! When a connection closes, its buffers go to a few spares kept for the next connections
//! ([`SPARES`] of each size, process-wide): zeroing 64 KiB for every new connection was half the
//! instructions of a request that needs one (`BENCHMARKS.md`, "Many hosts"). A spare holds
//! whatever its last connection left in it; ureq reads only what it has written.

use std::sync::Mutex;

use ureq::unversioned::transport::Buffers;

use super::clients::OUTPUT_BUFFER;

/// Spare buffers kept of each kind: a burst of new connections takes them, a burst of closing
/// ones refills them, and they never hold more than `SPARES` x (4 + 8) KiB.
const SPARES: usize = 16;

/// Spare input buffers of [`INITIAL_INPUT`] bytes, and output buffers of [`OUTPUT_BUFFER`]: the
/// sizes connections start with.
static SPARE_INPUT: Spares = Spares::new(INITIAL_INPUT);
static SPARE_OUTPUT: Spares = Spares::new(OUTPUT_BUFFER);

/// Up to [`SPARES`] buffers of one size.
struct Spares {
    size: usize,
    list: Mutex<Vec<Vec<u8>>>,
}

impl Spares {
    const fn new(size: usize) -> Spares {
        Spares {
            size,
            list: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `size` bytes: a spare if they are this pool's size and one is left, else a
    /// new one, zero-filled.
    fn take(&self, size: usize) -> Vec<u8> {
        let spare = (size == self.size)
            .then(|| self.list.lock().ok()?.pop())
            .flatten();
        spare.unwrap_or_else(|| vec![0; size])
    }

    /// Keeps `buffer` if it is of this pool's size and there is room; else it is freed.
    fn give(&self, buffer: Vec<u8>) {
        if buffer.len() != self.size {
            return;
        }
        if let Ok(mut list) = self.list.lock() {
            if list.len() < SPARES {
                list.push(buffer);
            }
        }
    }
}

/// The input buffer's first size, one page: a small response, head and body, in one read.
pub(super) const INITIAL_INPUT: usize = 4 * 1024;

/// The scratch space ureq asks for to read a request body into (as ureq's own buffers do).
const MIN_TMP: usize = 10 * 1024;

/// See the module docs.
#[derive(Debug)]
pub(super) struct SocketBuffers {
    input: Vec<u8>,
    filled: usize,
    consumed: usize,
    max_input: usize,
    /// The last read filled all the space it was given: the next one gets more.
    full_read: bool,
    output: Vec<u8>,
    output_size: usize,
    /// The last `input_consume` consumed something (ureq's `can_use_input` rule).
    progress: bool,
}

impl SocketBuffers {
    /// Buffers of at most `input_size` bytes in and exactly `output_size` out, allocated when
    /// first used.
    pub(super) fn new(input_size: usize, output_size: usize) -> SocketBuffers {
        SocketBuffers {
            input: Vec::new(),
            filled: 0,
            consumed: 0,
            max_input: input_size.max(1),
            full_read: false,
            output: Vec::new(),
            output_size: output_size.max(1),
            progress: false,
        }
    }

    fn ensure_output(&mut self) {
        if self.output.is_empty() {
            self.output = SPARE_OUTPUT.take(self.output_size);
        }
    }

    /// Moves the unconsumed input to the front, and makes room to read into: the first
    /// allocation, or a larger buffer after a read that filled the last one.
    fn make_room(&mut self, at_least: usize) {
        if self.consumed == self.filled {
            (self.consumed, self.filled) = (0, 0);
        } else if self.consumed > 0 && self.filled > self.input.len() / 2 {
            self.input.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
        let free = self.input.len() - self.filled;
        let wanted = if self.input.is_empty() {
            self.input = SPARE_INPUT.take(INITIAL_INPUT.min(self.max_input));
            self.input.len()
        } else if self.full_read || free == 0 {
            (self.input.len() * 2).min(self.max_input)
        } else {
            self.input.len()
        };
        let wanted = wanted.max((self.filled + at_least).min(self.max_input + at_least));
        if wanted > self.input.len() {
            self.input.resize(wanted, 0);
        }
        self.full_read = false;
    }
}

impl Drop for SocketBuffers {
    fn drop(&mut self) {
        SPARE_INPUT.give(std::mem::take(&mut self.input));
        SPARE_OUTPUT.give(std::mem::take(&mut self.output));
    }
}

impl Buffers for SocketBuffers {
    fn output(&mut self) -> &mut [u8] {
        self.ensure_output();
        &mut self.output
    }

    fn input(&self) -> &[u8] {
        &self.input[self.consumed..self.filled]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.make_room(0);
        &mut self.input[self.filled..]
    }

    fn input_appended(&mut self, amount: usize) {
        self.full_read = amount > 0 && self.filled + amount == self.input.len();
        self.filled = (self.filled + amount).min(self.input.len());
    }

    fn input_consume(&mut self, amount: usize) {
        self.progress = amount > 0;
        self.consumed = (self.consumed + amount).min(self.filled);
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.ensure_output();
        self.make_room(MIN_TMP);
        (&mut self.input[self.filled..], &mut self.output)
    }

    fn can_use_input(&self) -> bool {
        self.consumed < self.filled && self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `n` bytes into the buffers as a socket would, as far as they take them.
    fn read(buffers: &mut SocketBuffers, n: usize) -> usize {
        let space = buffers.input_append_buf().len().min(n);
        buffers.input_appended(space);
        space
    }

    #[test]
    fn the_input_starts_small_and_grows_while_reads_fill_it() {
        let mut buffers = SocketBuffers::new(96 * 1024, 64 * 1024);
        assert_eq!(read(&mut buffers, 1000), 1000);
        assert_eq!(buffers.input.len(), INITIAL_INPUT);
        buffers.input_consume(1000);
        // A large body: each read fills the buffer, so the next one gets twice the room.
        let mut sizes = Vec::new();
        for _ in 0..7 {
            let n = read(&mut buffers, usize::MAX);
            sizes.push(n);
            buffers.input_consume(n);
        }
        let kib: Vec<usize> = sizes.iter().map(|n| n / 1024).collect();
        assert_eq!(kib, [4, 8, 16, 32, 64, 96, 96]);
    }

    #[test]
    fn unconsumed_input_is_kept_across_growth() {
        let mut buffers = SocketBuffers::new(64 * 1024, 1024);
        let space = buffers.input_append_buf();
        space[..4].copy_from_slice(b"HTTP");
        let len = space.len();
        buffers.input_appended(len);
        // A head that does not fit yet: nothing consumed, and the buffer grows for the rest.
        assert!(buffers.input_append_buf().len() >= INITIAL_INPUT);
        assert_eq!(&buffers.input()[..4], b"HTTP");
        assert_eq!(buffers.input().len(), INITIAL_INPUT);
        assert!(!buffers.can_use_input());
        buffers.input_consume(4);
        assert!(buffers.can_use_input());
    }

    #[test]
    fn a_closed_connections_buffers_are_the_next_ones() {
        let mut first = SocketBuffers::new(96 * 1024, OUTPUT_BUFFER);
        read(&mut first, 10);
        first.output()[0] = b'G';
        drop(first);
        let mut next = SocketBuffers::new(96 * 1024, OUTPUT_BUFFER);
        // Whatever is left in a spare is never shown: the input starts empty.
        assert!(next.input().is_empty());
        assert_eq!(next.input_append_buf().len(), INITIAL_INPUT);
        assert_eq!(next.output().len(), OUTPUT_BUFFER);
    }

    #[test]
    fn spares_hold_and_hand_out_buffers_of_their_own_size_only() {
        let spares = Spares::new(8 * 1024);
        let count = || spares.list.lock().expect("spares").len();
        spares.give(vec![0; 64 * 1024]);
        assert_eq!(count(), 0, "a connection's own larger buffer is not kept");
        spares.give(vec![1; 8 * 1024]);
        assert_eq!(count(), 1);
        assert_eq!(spares.take(64 * 1024).len(), 64 * 1024);
        assert_eq!(count(), 1, "a request for another size leaves the spare");
        assert_eq!(spares.take(8 * 1024), vec![1; 8 * 1024]);
        assert_eq!(count(), 0);
        for _ in 0..SPARES + 3 {
            spares.give(vec![0; 8 * 1024]);
        }
        assert_eq!(count(), SPARES);
    }

    #[test]
    fn the_input_never_grows_past_its_size() {
        let mut buffers = SocketBuffers::new(20 * 1024, 1024);
        for _ in 0..4 {
            read(&mut buffers, usize::MAX);
        }
        assert_eq!(buffers.input().len(), 20 * 1024);
        assert!(
            buffers.input_append_buf().is_empty(),
            "full: ureq reports it"
        );
        assert_eq!(buffers.output().len(), 1024);
    }
}
