//! Python literals the scanner must read: strings (with prefixes, quotes,
//! escapes and implicit concatenation) and integers.

use tree_sitter::Node;

/// The value of a `str` literal, or `None` for anything else (bytes,
/// f-strings, expressions) — which PyTorch's scanner cannot use either.
pub(crate) fn string_literal(node: Node<'_>, source: &[u8]) -> Option<String> {
    match node.kind() {
        "string" => {
            let text = node.utf8_text(source).ok()?;
            decode_string(text)
        }
        "concatenated_string" => {
            let mut cursor = node.walk();
            let mut out = String::new();
            for part in node.named_children(&mut cursor) {
                if part.kind() == "comment" {
                    continue;
                }
                out.push_str(&string_literal(part, source)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// A non-negative `int` literal.
pub(crate) fn int_literal(node: Node<'_>, source: &[u8]) -> Option<i64> {
    if node.kind() != "integer" {
        return None;
    }
    let text: String = node
        .utf8_text(source)
        .ok()?
        .chars()
        .filter(|&c| c != '_')
        .collect();
    let lower = text.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(octal) = lower.strip_prefix("0o") {
        i64::from_str_radix(octal, 8).ok()
    } else if let Some(binary) = lower.strip_prefix("0b") {
        i64::from_str_radix(binary, 2).ok()
    } else {
        lower.parse().ok()
    }
}

fn decode_string(text: &str) -> Option<String> {
    let quote_start = text.find(['\'', '"'])?;
    let prefix = text[..quote_start].to_ascii_lowercase();
    if prefix.contains('b') || prefix.contains('f') || prefix.contains('t') {
        return None;
    }
    let raw = prefix.contains('r');
    let body = &text[quote_start..];
    let quote = if body.starts_with("\"\"\"") || body.starts_with("'''") {
        &body[..3]
    } else {
        &body[..1]
    };
    let inner = body.strip_prefix(quote)?.strip_suffix(quote)?;
    if raw {
        return Some(inner.to_owned());
    }
    unescape(inner)
}

fn unescape(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(escape) = chars.next() else {
            out.push('\\');
            break;
        };
        let hex =
            |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<char> {
                let digits: String = (0..n).filter_map(|_| chars.next()).collect();
                if digits.len() != n {
                    return None;
                }
                char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
            };
        match escape {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\u{07}'),
            'b' => out.push('\u{08}'),
            'f' => out.push('\u{0c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{0b}'),
            'x' => out.push(hex(&mut chars, 2)?),
            'u' => out.push(hex(&mut chars, 4)?),
            'U' => out.push(hex(&mut chars, 8)?),
            '0'..='7' => {
                let mut value = escape.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value)?);
            }
            // \N{NAME} needs the Unicode name table: not a literal we read.
            'N' => return None,
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_table() {
        let cases: [(&str, Option<&str>); 9] = [
            ("'a.b'", Some("a.b")),
            ("\"x\"", Some("x")),
            ("r'a\\n'", Some("a\\n")),
            ("'a\\nb'", Some("a\nb")),
            ("'''tri'''", Some("tri")),
            ("u'\\u00e9'", Some("é")),
            ("b'x'", None),
            ("f'{x}'", None),
            ("'\\101'", Some("A")),
        ];
        for (text, expected) in cases {
            assert_eq!(decode_string(text).as_deref(), expected, "{text}");
        }
    }
}
