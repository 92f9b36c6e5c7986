//! Python's text codecs that pickle relies on: UTF-8 with `surrogatepass`,
//! `raw-unicode-escape` (protocol 0 `UNICODE`), string-literal escapes
//! (protocol 0 `STRING`), and `int(text, 0)` (protocol 0 `INT`/`LONG`).

use num_bigint::BigInt;

use crate::value::PyStr;

/// Decodes UTF-8 the way CPython's unpickler does (`surrogatepass`): valid
/// UTF-8 plus encoded lone surrogates. `Err(index)` points at the first
/// byte that cannot start or continue a character.
pub(crate) fn decode_utf8_surrogatepass(bytes: &[u8]) -> Result<PyStr, usize> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(PyStr::Utf8(text.to_owned())),
        Err(_) => {
            let mut index = 0;
            while index < bytes.len() {
                index = next_code_point(bytes, index).map(|(_, next)| next)?;
            }
            Ok(PyStr::Surrogates(bytes.to_vec()))
        }
    }
}

/// One code point starting at `at` (surrogates allowed): (code point, next).
fn next_code_point(bytes: &[u8], at: usize) -> Result<(u32, usize), usize> {
    let lead = bytes[at];
    let (len, min, initial) = match lead {
        0x00..=0x7F => return Ok((u32::from(lead), at + 1)),
        0xC2..=0xDF => (2, 0x80, u32::from(lead & 0x1F)),
        0xE0..=0xEF => (3, 0x800, u32::from(lead & 0x0F)),
        0xF0..=0xF4 => (4, 0x1_0000, u32::from(lead & 0x07)),
        _ => return Err(at),
    };
    let mut code_point = initial;
    for offset in 1..len {
        match bytes.get(at + offset) {
            Some(&byte) if byte & 0xC0 == 0x80 => {
                code_point = (code_point << 6) | u32::from(byte & 0x3F);
            }
            _ => return Err(at + offset),
        }
    }
    if code_point < min || code_point > 0x10_FFFF {
        return Err(at);
    }
    Ok((code_point, at + len))
}

/// The code points of `surrogatepass` UTF-8 (already validated).
pub(crate) fn surrogatepass_code_points(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        match next_code_point(bytes, at) {
            Ok((code_point, next)) => {
                at = next;
                Some(code_point)
            }
            Err(_) => {
                at = bytes.len();
                None
            }
        }
    })
}

/// Encodes code points as `surrogatepass` UTF-8.
fn push_code_point(out: &mut Vec<u8>, code_point: u32) {
    match code_point {
        0..=0x7F => out.push(code_point as u8),
        0x80..=0x7FF => {
            out.push(0xC0 | (code_point >> 6) as u8);
            out.push(0x80 | (code_point & 0x3F) as u8);
        }
        0x800..=0xFFFF => {
            out.push(0xE0 | (code_point >> 12) as u8);
            out.push(0x80 | ((code_point >> 6) & 0x3F) as u8);
            out.push(0x80 | (code_point & 0x3F) as u8);
        }
        _ => {
            out.push(0xF0 | (code_point >> 18) as u8);
            out.push(0x80 | ((code_point >> 12) & 0x3F) as u8);
            out.push(0x80 | ((code_point >> 6) & 0x3F) as u8);
            out.push(0x80 | (code_point & 0x3F) as u8);
        }
    }
}

fn py_str_from_code_points(code_points: &[u32]) -> PyStr {
    let mut bytes = Vec::with_capacity(code_points.len());
    for &code_point in code_points {
        push_code_point(&mut bytes, code_point);
    }
    match String::from_utf8(bytes) {
        Ok(text) => PyStr::Utf8(text),
        Err(error) => PyStr::Surrogates(error.into_bytes()),
    }
}

/// Python's `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX` are
/// escapes, every other byte is a Latin-1 character. `Err` describes a bad
/// escape.
pub(crate) fn decode_raw_unicode_escape(bytes: &[u8]) -> Result<PyStr, String> {
    let mut code_points = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'\\' {
            // An odd run of backslashes before u/U starts an escape.
            let digits = match bytes.get(at + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if digits > 0 {
                let hex = bytes
                    .get(at + 2..at + 2 + digits)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| format!("truncated \\{} escape", bytes[at + 1] as char))?;
                let code_point = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                if code_point > 0x10_FFFF {
                    return Err("\\Uxxxxxxxx out of range".to_owned());
                }
                code_points.push(code_point);
                at += 2 + digits;
                continue;
            }
            // `\\` is two literal backslashes (raw), but it also stops the
            // second from starting an escape.
            if bytes.get(at + 1) == Some(&b'\\') {
                code_points.extend([u32::from(b'\\'), u32::from(b'\\')]);
                at += 2;
                continue;
            }
        }
        code_points.push(u32::from(byte));
        at += 1;
    }
    Ok(py_str_from_code_points(&code_points))
}

/// Python's `codecs.escape_decode` (what protocol 0 `STRING` uses): the
/// escapes of a bytes literal. `Err` describes a bad escape.
pub(crate) fn escape_decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(&escape) = bytes.get(at) else {
            return Err("trailing \\ in string".to_owned());
        };
        at += 1;
        match escape {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0C),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0B),
            b'0'..=b'7' => {
                let mut value = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.get(at) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            at += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xFF) as u8);
            }
            b'x' => {
                let hex = bytes
                    .get(at..at + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("invalid \\x escape at position {}", at - 2))?;
                out.push(hex);
                at += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// Python's `int(text, 0)`: optional sign, `0x`/`0o`/`0b` prefixes,
/// underscores between digits, surrounding whitespace. `None` if invalid.
pub(crate) fn parse_python_int(text: &str) -> Option<BigInt> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.strip_prefix('_').unwrap_or(rest))
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.strip_prefix('_').unwrap_or(rest))
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.strip_prefix('_').unwrap_or(rest))
    } else {
        // Base 0 forbids leading zeros in non-zero decimals ("010").
        if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().any(|b| b != b'0' && b != b'_')
        {
            return None;
        }
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let cleaned: String = body.chars().filter(|&c| c != '_').collect();
    let magnitude = BigInt::parse_bytes(cleaned.as_bytes(), radix)?;
    if cleaned.starts_with(['+', '-']) {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogatepass_table() {
        assert_eq!(decode_utf8_surrogatepass(b"abc"), Ok(PyStr::from("abc")));
        // "\ud800" encoded with surrogatepass.
        let lone = decode_utf8_surrogatepass(b"a\xed\xa0\x80b").unwrap();
        assert_eq!(lone, PyStr::Surrogates(b"a\xed\xa0\x80b".to_vec()));
        assert_eq!(lone.to_string_lossy(), "a\\ud800b");
        for (bad, at) in [
            (&b"\xff"[..], 0),
            (b"a\xc3", 2),
            (b"\xc0\x80", 0),
            (b"\xf4\x90\x80\x80", 0),
        ] {
            assert_eq!(decode_utf8_surrogatepass(bad), Err(at), "{bad:?}");
        }
    }

    #[test]
    fn raw_unicode_escape_table() {
        let cases: [(&[u8], &str); 5] = [
            (b"plain", "plain"),
            (b"caf\xe9", "café"),
            (b"\\u00e9\\U0001F600", "é😀"),
            (b"back\\slash", "back\\slash"),
            (b"\\\\u0041", "\\\\u0041"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                decode_raw_unicode_escape(input).unwrap(),
                PyStr::from(expected)
            );
        }
        assert!(decode_raw_unicode_escape(b"\\u12").is_err());
    }

    #[test]
    fn escape_decode_table() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"abc", b"abc"),
            (b"a\\nb\\t", b"a\nb\t"),
            (b"\\x00\\xff", b"\x00\xff"),
            (b"\\101\\7", b"A\x07"),
            (b"\\q", b"\\q"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_decode(input).unwrap(), expected);
        }
        assert!(escape_decode(b"\\x4").is_err());
    }

    #[test]
    fn python_int_table() {
        let ok = [
            ("0", 0i64),
            ("42", 42),
            ("-7", -7),
            ("+3", 3),
            ("0x1F", 31),
            ("0o17", 15),
            ("0b101", 5),
            ("1_000", 1000),
            (" 12 ", 12),
            ("000", 0),
        ];
        for (text, value) in ok {
            assert_eq!(
                parse_python_int(text),
                Some(BigInt::from(value)),
                "{text:?}"
            );
        }
        for bad in [
            "", "-", "010", "1__0", "_1", "1_", "0x", "12a", "--1", "+-1",
        ] {
            assert_eq!(parse_python_int(bad), None, "{bad:?}");
        }
    }
}
