//! `tokenizer.json` (BERT WordPiece) through the `tokenizers` crate, truncating and padding the
//! way sentence-transformers calls it: at most `max_seq_length` tokens, no padding (the encoder
//! packs texts instead).

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use coda_core::{Error, Result};

use crate::model::Packed;

/// A loaded tokenizer that yields token ids with `[CLS]` … `[SEP]` around them.
pub(crate) struct WordPiece {
    inner: Tokenizer,
}

impl WordPiece {
    /// Loads `path`, overriding its own truncation and padding (the file asks for a fixed 128).
    pub(crate) fn load(path: &Path, max_tokens: usize) -> Result<WordPiece> {
        let mut inner =
            Tokenizer::from_file(path).map_err(|e| Error::corrupt(path, e.to_string()))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::corrupt(path, e.to_string()))?;
        inner.with_padding(None);
        Ok(WordPiece { inner })
    }

    /// Token ids of `text`, special tokens included.
    pub(crate) fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::invalid("text", format!("cannot be tokenised: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// Packs `rows` end to end; the encoder keeps them apart by their lengths, so no padding.
pub(crate) fn pack(rows: &[&[u32]]) -> Packed {
    Packed {
        ids: rows.concat(),
        lens: rows.iter().map(|r| r.len()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_keeps_lengths() {
        let packed = pack(&[&[101, 7, 102], &[101, 102]]);
        assert_eq!(packed.ids, vec![101, 7, 102, 101, 102]);
        assert_eq!(packed.lens, vec![3, 2]);
    }
}
