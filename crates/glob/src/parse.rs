//! Pattern text → segments, with the pest grammar in `pattern.pest`.

use std::fmt;

use pest::Parser;
use pest_derive::Parser;

use crate::Separator;

#[derive(Parser)]
#[grammar = "pattern.pest"]
struct PatternParser;

/// One segment of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// `**`: zero or more whole, non-empty segments.
    AnySegments,
    /// Literal pieces joined by `*` wildcards; one piece means no wildcard.
    /// Pieces never contain the separator or `*`.
    Wildcard(Vec<String>),
}

/// A pattern that cannot be compiled.
///
/// ```
/// let error = tpkg_glob::GlobGroup::modules("torch.**x").unwrap_err();
/// assert_eq!(error.pattern(), "torch.**x");
/// assert_eq!(error.position(), 6);
/// assert_eq!(
///     error.to_string(),
///     "invalid glob pattern \"torch.**x\" at byte 6: ** can only appear as an entire path segment"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    pattern: String,
    position: usize,
}

impl GlobError {
    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Byte offset of the offending `**` in the pattern.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reason is PyTorch's ValueError text.
        write!(
            f,
            "invalid glob pattern {:?} at byte {}: ** can only appear as an entire path segment",
            self.pattern, self.position
        )
    }
}

impl std::error::Error for GlobError {}

/// Parses `pattern` into segments.
pub(crate) fn parse(pattern: &str, separator: Separator) -> Result<Vec<Segment>, GlobError> {
    let sep = separator.as_char();
    let input = format!("{sep}{pattern}");
    let parsed = PatternParser::parse(Rule::pattern, &input).map_err(|error| {
        // The grammar only rejects `**` inside a longer segment; point at it.
        let position = misplaced_double_star(pattern, sep).unwrap_or_else(|| {
            let at = match error.location {
                pest::error::InputLocation::Pos(at) => at,
                pest::error::InputLocation::Span((at, _)) => at,
            };
            at.saturating_sub(sep.len_utf8())
        });
        GlobError {
            pattern: pattern.to_owned(),
            position,
        }
    })?;
    let mut segments = Vec::new();
    for pair in parsed.flatten() {
        match pair.as_rule() {
            Rule::double_star => segments.push(Segment::AnySegments),
            Rule::wildcard => {
                let mut pieces = vec![String::new()];
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::star => pieces.push(String::new()),
                        _ => {
                            if let Some(last) = pieces.last_mut() {
                                last.push_str(part.as_str());
                            }
                        }
                    }
                }
                segments.push(Segment::Wildcard(pieces));
            }
            _ => {}
        }
    }
    Ok(segments)
}

/// Byte offset of the first `**` that is part of a longer segment.
fn misplaced_double_star(pattern: &str, separator: char) -> Option<usize> {
    let mut offset = 0;
    for segment in pattern.split(separator) {
        if segment != "**"
            && let Some(at) = segment.find("**")
        {
            return Some(offset + at);
        }
        offset += segment.len() + separator.len_utf8();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(pieces: &[&str]) -> Segment {
        Segment::Wildcard(pieces.iter().map(|p| (*p).to_owned()).collect())
    }

    #[test]
    fn segments_table() {
        use Segment::AnySegments as Any;
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("torch", vec![wild(&["torch"])]),
            ("torch.**", vec![wild(&["torch"]), Any]),
            ("**", vec![Any]),
            ("fo*.bar", vec![wild(&["fo", ""]), wild(&["bar"])]),
            ("*", vec![wild(&["", ""])]),
            ("a*b*c", vec![wild(&["a", "b", "c"])]),
            ("", vec![wild(&[""])]),
            ("a..b", vec![wild(&["a"]), wild(&[""]), wild(&["b"])]),
            ("**.x.**", vec![Any, wild(&["x"]), Any]),
            ("a+b.c(d)", vec![wild(&["a+b"]), wild(&["c(d)"])]),
        ];
        for (pattern, expected) in cases {
            assert_eq!(
                parse(pattern, Separator::Dot).unwrap(),
                expected,
                "{pattern:?}"
            );
        }
        assert_eq!(
            parse("foo/a*.htm*", Separator::Slash).unwrap(),
            vec![wild(&["foo"]), wild(&["a", ".htm", ""])]
        );
    }

    #[test]
    fn double_star_inside_a_segment_is_refused_at_its_position() {
        for (pattern, position) in [
            ("a.**b", 2),
            ("**b", 0),
            ("a**", 1),
            ("***", 0),
            ("x.y.b**.z", 5),
            ("**.**x", 3),
        ] {
            let error = parse(pattern, Separator::Dot).unwrap_err();
            assert_eq!(error.position(), position, "{pattern:?}");
        }
    }
}
