//! Embeddings as text: little-endian `f32`s in standard base64 with padding (RFC 4648 §4),
//! small enough here that a dependency would cost more than these lines.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `vector` as base64 of its little-endian `f32` bytes.
pub fn encode_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The `f32`s `text` encodes, or why it does not encode any.
pub fn decode_f32(text: &str) -> Result<Vec<f32>, String> {
    let raw = text.as_bytes();
    if raw.len() % 4 != 0 {
        return Err("is not padded base64 (its length is not a multiple of 4)".into());
    }
    let mut bytes = Vec::with_capacity(raw.len() / 4 * 3);
    for (q, quad) in raw.chunks(4).enumerate() {
        let last = q + 1 == raw.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err("has `=` padding in the middle".into());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            let v =
                value(c).ok_or_else(|| format!("holds {:?}, not a base64 character", c as char))?;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(&three[..3 - pad]);
    }
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "decodes to {} bytes, not a whole number of f32s",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_bit_for_bit() {
        for v in [
            vec![],
            vec![1.0f32],
            vec![0.1, -2.5, f32::MIN_POSITIVE],
            vec![3.0; 384],
        ] {
            let text = encode_f32(&v);
            assert_eq!(decode_f32(&text).expect("decodes"), v);
        }
    }

    #[test]
    fn matches_the_standard_alphabet() {
        // 1.0f32 is 00 00 80 3f little-endian.
        assert_eq!(encode_f32(&[1.0]), "AACAPw==");
    }

    #[test]
    fn bad_text_says_why() {
        assert!(decode_f32("abc")
            .expect_err("length")
            .contains("multiple of 4"));
        assert!(decode_f32("AA*A")
            .expect_err("alphabet")
            .contains("base64 character"));
        assert!(decode_f32("AAAA")
            .expect_err("3 bytes")
            .contains("whole number"));
        assert!(decode_f32("AA==AAAA").expect_err("pad").contains("middle"));
    }
}
