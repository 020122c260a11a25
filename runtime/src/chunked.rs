//! Append-only storage in fixed-size chunks, for state that grows with the
//! log (a persona's value receipts).
//!
//! A `Vec` that grows by doubling moves everything it holds each time it
//! grows, and past a few hundred KiB each move lands on freshly mapped pages
//! the kernel must zero first: replaying 100k triggers spent a fifth of the
//! replay thread's time there. Chunks are allocated once, at a size the
//! allocator keeps in its own pages, and never move.

/// Bytes a chunk holds (items of size `n` hold `CHUNK_BYTES / n` each).
const CHUNK_BYTES: usize = 32 * 1024;

/// A list that only grows, kept in chunks that never move.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    /// Items a chunk holds.
    const PER_CHUNK: usize = {
        let size = std::mem::size_of::<T>();
        if size == 0 || size >= CHUNK_BYTES {
            1
        } else {
            CHUNK_BYTES / size
        }
    };

    /// Appends `item`.
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < Self::PER_CHUNK => chunk.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(Self::PER_CHUNK);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// The last item.
    pub fn last(&self) -> Option<&T> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every item, in the order pushed.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        Iter {
            items: self.chunks.iter().flatten(),
            left: self.len,
        }
    }
}

/// [`Chunks::iter`]: a flattened walk that knows its length.
struct Iter<I> {
    items: I,
    left: usize,
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> Iterator for Iter<I> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        let item = self.items.next()?;
        self.left -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ExactSizeIterator for Iter<I> {}

/// Byte strings appended one after another, each kept whole in one chunk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text {
    chunks: Vec<Vec<u8>>,
}

/// Where [`Text::push`] put a byte string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    chunk: u32,
    start: u32,
    end: u32,
}

impl Text {
    /// Appends `bytes` whole in one chunk (a new one when the last has no
    /// room; one longer than a chunk gets a chunk of its own size).
    pub fn push(&mut self, bytes: &[u8]) -> Span {
        let fits = |chunk: &Vec<u8>| chunk.capacity() - chunk.len() >= bytes.len();
        if !self.chunks.last().is_some_and(fits) {
            self.chunks
                .push(Vec::with_capacity(CHUNK_BYTES.max(bytes.len())));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        let start = chunk.len();
        chunk.extend_from_slice(bytes);
        let narrow = |n: usize| u32::try_from(n).expect("a text chunk stays under 4 GiB");
        Span {
            chunk: narrow(chunk_index),
            start: narrow(start),
            end: narrow(chunk.len()),
        }
    }

    /// The bytes at `span`.
    pub fn get(&self, span: Span) -> &[u8] {
        let index = |n: u32| usize::try_from(n).expect("u32 fits usize");
        &self.chunks[index(span.chunk)][index(span.start)..index(span.end)]
    }

    /// Bytes held in all.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_order_length_and_last_across_chunk_ends() {
        let mut list = Chunks::<u64>::default();
        assert!(list.is_empty() && list.last().is_none());
        let n = Chunks::<u64>::PER_CHUNK * 3 + 5;
        for i in 0..n as u64 {
            list.push(i);
            assert_eq!(list.last(), Some(&i));
        }
        assert_eq!(list.len(), n);
        assert_eq!(list.iter().len(), n);
        assert!(list.iter().copied().eq(0..n as u64));
        // A chunk never grew past its first allocation.
        assert!(list
            .chunks
            .iter()
            .all(|c| c.capacity() == Chunks::<u64>::PER_CHUNK));
    }

    #[test]
    fn text_keeps_each_string_whole_and_never_moves_a_chunk() {
        let mut text = Text::default();
        let long = vec![b'x'; CHUNK_BYTES + 10];
        let mut spans = Vec::new();
        let mut wanted: Vec<Vec<u8>> = Vec::new();
        for i in 0..5_000u32 {
            let bytes: Vec<u8> = if i == 2_500 {
                long.clone()
            } else {
                format!("item-{i}-{}", "y".repeat((i % 97) as usize)).into_bytes()
            };
            spans.push(text.push(&bytes));
            wanted.push(bytes);
        }
        for (span, bytes) in spans.iter().zip(&wanted) {
            assert_eq!(text.get(*span), bytes.as_slice());
        }
        assert_eq!(text.len(), wanted.iter().map(Vec::len).sum::<usize>());
        assert!(text.chunks.len() > 2, "the strings spread over chunks");
        for chunk in &text.chunks {
            assert!(chunk.len() <= chunk.capacity());
            assert!(chunk.capacity() == CHUNK_BYTES || chunk.capacity() == long.len());
        }
        assert!(Text::default().is_empty());
    }
}
