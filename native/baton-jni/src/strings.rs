//! Java strings as Rust strings. JNI hands them over in modified UTF-8: UTF-16 code units
//! each written as 1 to 3 bytes, so NUL is two bytes and a supplementary character is a
//! surrogate pair of 3 bytes each. A Java string may hold a lone surrogate, which no UTF-8
//! string can: each one becomes U+FFFD, and the rest of the string (pairs included) is kept.

/// The UTF-8 text of a Java string given in modified UTF-8.
pub fn from_java(bytes: &[u8]) -> String {
    // Without NUL and outside the BMP, modified UTF-8 is UTF-8: the common case, checked
    // fast. Anything else fails this check and is decoded below.
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_owned();
    }
    let units = CodeUnits { bytes, at: 0 };
    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// The UTF-16 code units of modified UTF-8. The JVM writes it well formed; a malformed
/// byte still decodes (to U+FFFD), never panics.
struct CodeUnits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for CodeUnits<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        let lead = *self.bytes.get(self.at)?;
        let (len, bits) = match lead {
            0x00..=0x7f => return self.advance(1, u16::from(lead)),
            0xc0..=0xdf => (2, u16::from(lead & 0x1f)),
            0xe0..=0xef => (3, u16::from(lead & 0x0f)),
            _ => return self.advance(1, REPLACEMENT),
        };
        let mut unit = bits;
        for i in 1..len {
            match self.bytes.get(self.at + i) {
                Some(&b) if b & 0xc0 == 0x80 => unit = unit << 6 | u16::from(b & 0x3f),
                _ => return self.advance(i, REPLACEMENT),
            }
        }
        self.advance(len, unit)
    }
}

/// U+FFFD as a code unit.
const REPLACEMENT: u16 = 0xfffd;

impl CodeUnits<'_> {
    /// Moves past `len` bytes, which were `unit`.
    fn advance(&mut self, len: usize, unit: u16) -> Option<u16> {
        self.at += len;
        Some(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modified UTF-8 as the JVM writes it (`GetStringUTFChars`).
    fn modified_utf8(units: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &u in units {
            match u {
                0x01..=0x7f => bytes.push(u as u8),
                0x00 | 0x80..=0x7ff => {
                    bytes.extend([0xc0 | (u >> 6) as u8, 0x80 | (u & 0x3f) as u8]);
                }
                _ => bytes.extend([
                    0xe0 | (u >> 12) as u8,
                    0x80 | ((u >> 6) & 0x3f) as u8,
                    0x80 | (u & 0x3f) as u8,
                ]),
            }
        }
        bytes
    }

    fn java(text: &str) -> Vec<u8> {
        modified_utf8(&text.encode_utf16().collect::<Vec<_>>())
    }

    #[test]
    fn text_comes_through_as_it_is() {
        for text in ["", "plain", "caf\u{e9} \u{20ac}", "nul \0 inside", "emoji \u{1f600}!"] {
            assert_eq!(from_java(&java(text)), text);
        }
    }

    #[test]
    fn each_lone_surrogate_becomes_one_replacement_and_pairs_are_kept() {
        // "a", lone high, "b", lone low, "c", a pair (U+1F600), then a high at the very end.
        let units = [0x61, 0xd800, 0x62, 0xdc00, 0x63, 0xd83d, 0xde00, 0xd801];
        assert_eq!(from_java(&modified_utf8(&units)), "a\u{fffd}b\u{fffd}c\u{1f600}\u{fffd}");
    }

    #[test]
    fn malformed_bytes_decode_without_panic() {
        for bytes in [&[0xff][..], &[0xe0, 0x80], &[0xc0], &[0x80, 0x41], &[0xed, 0xa0]] {
            assert!(from_java(bytes).contains('\u{fffd}'), "{bytes:?}");
        }
    }
}
