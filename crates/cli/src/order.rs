//! `--ordered`: results put back in input order before they are printed.
//!
//! Each line the run loop takes gets the next sequence number; its result goes into a
//! [`Reorder`] buffer, and leaves it as soon as every line before it has left. The buffer holds
//! only results that finished ahead of an earlier line, and the run loop takes no new line while
//! the distance from the oldest unprinted line to the newest one taken reaches its window, so a
//! slow first URL stops the run from reading on instead of making the buffer grow.

use std::collections::VecDeque;

/// Results waiting for the ones before them.
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    /// The sequence number printed next.
    next: u64,
    /// `waiting[i]` is the result of line `next + i`, once it has one.
    waiting: VecDeque<Option<T>>,
}

impl<T> Reorder<T> {
    pub(crate) fn new() -> Reorder<T> {
        Reorder {
            next: 0,
            waiting: VecDeque::new(),
        }
    }

    /// The sequence number of the oldest line without its turn yet.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// Files the result of line `seq`, which must not have had its turn already.
    pub(crate) fn insert(&mut self, seq: u64, item: T) {
        // Every sequence number is handed out once and its result inserted once.
        let offset = usize::try_from(seq - self.next).expect("a bounded look-ahead");
        if self.waiting.len() <= offset {
            self.waiting.resize_with(offset + 1, || None);
        }
        self.waiting[offset] = Some(item);
    }

    /// The next result in order, if it is in.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.waiting.front_mut()?.take()?;
        self.waiting.pop_front();
        self.next += 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_leave_in_sequence_order() {
        let mut r = Reorder::new();
        r.insert(2, 'c');
        r.insert(1, 'b');
        assert_eq!(r.pop(), None, "0 is not in");
        r.insert(0, 'a');
        assert_eq!(
            (r.pop(), r.pop(), r.pop(), r.pop()),
            (Some('a'), Some('b'), Some('c'), None)
        );
        assert_eq!(r.next(), 3);
        r.insert(4, 'e');
        r.insert(3, 'd');
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some('d'), Some('e'), None));
        assert!(r.waiting.is_empty());
    }
}
