//! What the user passed as include or exclude, kept so that the group can be
//! printed exactly as PyTorch prints it.

/// One pattern or a list of patterns, as given to a [`GlobGroup`](crate::GlobGroup).
///
/// ```
/// use tpkg_glob::Patterns;
/// assert_eq!(Patterns::from("torch.**").python_str(), "torch.**");
/// assert_eq!(Patterns::from(["a", "b.*"]).python_str(), "['a', 'b.*']");
/// assert_eq!(Patterns::none().python_str(), "()");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    /// A single pattern string.
    One(String),
    /// A list of patterns (printed like a Python list).
    List(Vec<String>),
    /// A tuple of patterns (printed like a Python tuple; the default exclude).
    Tuple(Vec<String>),
}

impl Patterns {
    /// No patterns: PyTorch's default `exclude=()`.
    pub fn none() -> Self {
        Patterns::Tuple(Vec::new())
    }

    /// The patterns, in order.
    ///
    /// ```
    /// let patterns = tpkg_glob::Patterns::from(vec!["a", "b"]);
    /// assert_eq!(patterns.iter().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Patterns::One(one) => std::slice::from_ref(one),
            Patterns::List(many) | Patterns::Tuple(many) => many,
        };
        slice.iter().map(String::as_str)
    }

    /// How Python's `str()` prints what was given.
    pub fn python_str(&self) -> String {
        match self {
            Patterns::One(one) => one.clone(),
            Patterns::List(many) => format!("[{}]", python_reprs(many).join(", ")),
            Patterns::Tuple(many) if many.len() == 1 => format!("({},)", python_repr(&many[0])),
            Patterns::Tuple(many) => format!("({})", python_reprs(many).join(", ")),
        }
    }
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns::none()
    }
}

/// `()` is Python's empty tuple: no patterns, printed as `()`.
impl From<()> for Patterns {
    fn from((): ()) -> Self {
        Patterns::none()
    }
}

impl From<&str> for Patterns {
    fn from(pattern: &str) -> Self {
        Patterns::One(pattern.to_owned())
    }
}

impl From<String> for Patterns {
    fn from(pattern: String) -> Self {
        Patterns::One(pattern)
    }
}

impl From<Vec<String>> for Patterns {
    fn from(patterns: Vec<String>) -> Self {
        Patterns::List(patterns)
    }
}

impl From<Vec<&str>> for Patterns {
    fn from(patterns: Vec<&str>) -> Self {
        Patterns::List(patterns.into_iter().map(str::to_owned).collect())
    }
}

impl From<&[&str]> for Patterns {
    fn from(patterns: &[&str]) -> Self {
        Patterns::List(patterns.iter().map(|p| (*p).to_owned()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Patterns {
    fn from(patterns: [&str; N]) -> Self {
        Patterns::List(patterns.iter().map(|p| (*p).to_owned()).collect())
    }
}

fn python_reprs(strings: &[String]) -> Vec<String> {
    strings.iter().map(|s| python_repr(s)).collect()
}

/// Python's `repr()` of a `str`.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_table() {
        for (text, expected) in [
            ("a", "'a'"),
            ("it's", "\"it's\""),
            ("both'\"", "'both\\'\"'"),
            ("back\\slash", "'back\\\\slash'"),
            ("tab\t", "'tab\\t'"),
        ] {
            assert_eq!(python_repr(text), expected);
        }
        assert_eq!(Patterns::Tuple(vec!["x".into()]).python_str(), "('x',)");
    }
}
