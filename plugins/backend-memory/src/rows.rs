//! Fixed-width rows (one owner's vectors, or their int8 codes) kept in chunks that never move
//! once allocated: growing allocates one more chunk rather than copying the whole array, so a
//! write to a user of a million memories never stalls on a reallocation of gigabytes under the
//! owner's lock, and a replay does not copy every vector it has read each time the array
//! doubles (with mimalloc, whose large reallocations copy, that was 15% of a 1M-memory open).

/// Rows per chunk once the first is full: 2,048 × 384 `f32` is 3 MB. The first chunk grows
/// as a `Vec` does up to this size, so a user with a handful of memories holds no more.
pub(crate) const CHUNK_ROWS: usize = 2048;

/// Rows of `width` elements, row `i` in chunk `i / CHUNK_ROWS`.
pub(crate) struct Rows<T> {
    /// Every chunk but the last holds `CHUNK_ROWS` rows.
    chunks: Vec<Vec<T>>,
    width: usize,
    len: usize,
}

impl<T: Copy + Default> Rows<T> {
    pub(crate) fn new(width: usize) -> Self {
        Rows {
            chunks: Vec::new(),
            width,
            len: 0,
        }
    }

    /// How many rows.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements held over every row.
    pub(crate) fn elements(&self) -> usize {
        self.len * self.width
    }

    /// Counts one more row and gives the chunk it goes in, for the caller to append it.
    fn grow(&mut self) -> &mut Vec<T> {
        let chunk = self.len / CHUNK_ROWS;
        if chunk == self.chunks.len() {
            let capacity = if chunk == 0 {
                0
            } else {
                CHUNK_ROWS * self.width
            };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        self.len += 1;
        &mut self.chunks[chunk]
    }

    /// Appends `row`: its first `width` elements, padded with defaults if it is shorter (the
    /// callers check lengths; the layout holds whatever they pass).
    pub(crate) fn push(&mut self, row: &[T]) {
        let width = self.width;
        let tail = self.grow();
        let start = tail.len();
        tail.extend_from_slice(&row[..row.len().min(width)]);
        tail.resize(start + width, T::default());
    }

    /// Appends a row of defaults that `fill` then writes, returning what `fill` returns.
    pub(crate) fn push_with<R>(&mut self, fill: impl FnOnce(&mut [T]) -> R) -> R {
        let width = self.width;
        let tail = self.grow();
        let start = tail.len();
        tail.resize(start + width, T::default());
        fill(&mut tail[start..])
    }

    /// Row `i`; panics past the end, as slice indexing does.
    pub(crate) fn row(&self, i: usize) -> &[T] {
        let at = (i % CHUNK_ROWS) * self.width;
        &self.chunks[i / CHUNK_ROWS][at..at + self.width]
    }

    /// Row `i`, to write.
    pub(crate) fn row_mut(&mut self, i: usize) -> &mut [T] {
        let at = (i % CHUNK_ROWS) * self.width;
        &mut self.chunks[i / CHUNK_ROWS][at..at + self.width]
    }

    /// Every row in order (none when `width` is 0).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        let width = self.width.max(1);
        self.chunks.iter().flat_map(move |c| c.chunks_exact(width))
    }

    /// Moves the last row into `i` and drops the last, as `Vec::swap_remove` does.
    pub(crate) fn swap_remove(&mut self, i: usize) {
        let Some(last) = self.len.checked_sub(1) else {
            return;
        };
        let width = self.width;
        let (lc, lo) = (last / CHUNK_ROWS, (last % CHUNK_ROWS) * width);
        if i < last {
            let (ic, io) = (i / CHUNK_ROWS, (i % CHUNK_ROWS) * width);
            if ic == lc {
                self.chunks[lc].copy_within(lo..lo + width, io);
            } else {
                let (head, tail) = self.chunks.split_at_mut(lc);
                head[ic][io..io + width].copy_from_slice(&tail[0][lo..lo + width]);
            }
        }
        self.chunks[lc].truncate(lo);
        if self.chunks[lc].is_empty() && lc > 0 {
            self.chunks.pop();
        }
        self.len = last;
    }

    /// Every row in order, end to end in one array.
    pub(crate) fn to_vec(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.elements());
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Bytes the rows take.
    pub(crate) fn bytes(&self) -> usize {
        self.elements() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> [u32; 3] {
        let i = i as u32;
        [i, i + 1, i + 2]
    }

    fn filled(n: usize) -> Rows<u32> {
        let mut rows = Rows::new(3);
        for i in 0..n {
            rows.push(&row(i));
        }
        rows
    }

    #[test]
    fn rows_span_chunks_and_read_back_in_order() {
        let n = CHUNK_ROWS * 2 + 5;
        let rows = filled(n);
        assert_eq!(rows.len(), n);
        assert_eq!(rows.elements(), n * 3);
        assert_eq!(rows.chunks.len(), 3);
        for i in [0, 1, CHUNK_ROWS - 1, CHUNK_ROWS, CHUNK_ROWS * 2 + 4] {
            assert_eq!(rows.row(i), row(i));
        }
        let all: Vec<&[u32]> = rows.iter().collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().enumerate().all(|(i, r)| *r == row(i)));
        let flat = rows.to_vec();
        assert_eq!(flat.len(), n * 3);
        assert_eq!(&flat[CHUNK_ROWS * 3..CHUNK_ROWS * 3 + 3], row(CHUNK_ROWS));
    }

    #[test]
    fn a_full_chunk_never_reallocates_as_rows_are_added() {
        let mut rows = filled(CHUNK_ROWS + 1);
        let first = rows.row(0).as_ptr();
        for i in 0..CHUNK_ROWS * 3 {
            rows.push(&row(i));
        }
        assert_eq!(
            rows.row(0).as_ptr(),
            first,
            "the first chunk stayed where it was"
        );
    }

    #[test]
    fn swap_remove_moves_the_last_row_across_chunks_and_drops_empty_chunks() {
        let mut rows = filled(CHUNK_ROWS + 1);
        rows.swap_remove(3);
        assert_eq!(rows.len(), CHUNK_ROWS);
        assert_eq!(
            rows.row(3),
            row(CHUNK_ROWS),
            "the last row moved into the gap"
        );
        assert_eq!(rows.chunks.len(), 1, "the emptied chunk is freed");
        rows.swap_remove(5);
        assert_eq!(rows.row(5), row(CHUNK_ROWS - 1), "within one chunk too");
        rows.swap_remove(rows.len() - 1);
        assert_eq!(rows.len(), CHUNK_ROWS - 2);
        assert_eq!(rows.iter().count(), CHUNK_ROWS - 2);
        rows.push(&row(7));
        assert_eq!(rows.row(CHUNK_ROWS - 2), row(7));
    }

    #[test]
    fn a_short_row_is_padded_and_a_long_one_cut_to_the_width() {
        let mut rows = Rows::new(3);
        rows.push(&[9u32]);
        rows.push(&[1, 2, 3, 4]);
        assert_eq!(rows.row(0), [9, 0, 0]);
        assert_eq!(rows.row(1), [1, 2, 3]);
        let m = rows.push_with(|out| {
            out.copy_from_slice(&[5, 6, 7]);
            42
        });
        assert_eq!((m, rows.row(2)), (42, &[5, 6, 7][..]));
        rows.row_mut(0)[1] = 8;
        assert_eq!(rows.row(0), [9, 8, 0]);
        let mut empty: Rows<u32> = Rows::new(3);
        empty.swap_remove(0);
        assert_eq!(empty.len(), 0);
    }
}
