//! [`AuditPolicy`]: the user's additions to the built-in classification.

use serde::Deserialize;

/// The user's additions to the built-in classification (`--policy FILE`):
/// `{"safe": ["mymodel.Net", "mymodel.*"], "unsafe": ["numpy.load"]}`.
/// A pattern is `module.name`, or `module.*` for everything in a module
/// (and its submodules). Unsafe entries win over safe ones.
///
/// It deserialises from that shape (keys `safe` and `unsafe`, both
/// optional, no others), in whatever format the caller reads; or is built:
///
/// ```
/// use tpkg::audit::AuditPolicy;
/// let policy = AuditPolicy::default()
///     .with_safe(["mymodel.*"])
///     .with_unsafe(["numpy.load"]);
/// assert_eq!(policy.unsafe_, ["numpy.load"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Raw")]
#[non_exhaustive]
pub struct AuditPolicy {
    /// Globals to treat as safe.
    pub safe: Vec<String>,
    /// Globals to treat as unsafe.
    pub unsafe_: Vec<String>,
}

/// The policy file's shape. (Its name shows in deserialisation errors:
/// `expected struct Raw`.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    safe: Vec<String>,
    #[serde(default, rename = "unsafe")]
    unsafe_: Vec<String>,
}

impl From<Raw> for AuditPolicy {
    fn from(raw: Raw) -> Self {
        AuditPolicy {
            safe: raw.safe,
            unsafe_: raw.unsafe_,
        }
    }
}

impl AuditPolicy {
    /// Adds globals to treat as safe (`module.name` or `module.*`).
    pub fn with_safe(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.safe.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Adds globals to treat as unsafe (`module.name` or `module.*`).
    pub fn with_unsafe(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.unsafe_.extend(patterns.into_iter().map(Into::into));
        self
    }

    pub(crate) fn matches(patterns: &[String], qualified: &str) -> bool {
        patterns.iter().any(|p| match p.strip_suffix(".*") {
            Some(module) => qualified
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with('.')),
            None => p == qualified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AuditPolicy;

    #[test]
    fn policies_read_from_json_as_before() {
        let policy: AuditPolicy =
            serde_json::from_str(r#"{"safe": ["m.*"], "unsafe": ["numpy.load"]}"#).unwrap();
        assert_eq!(
            policy,
            AuditPolicy::default()
                .with_safe(["m.*"])
                .with_unsafe(["numpy.load"])
        );
        let error = serde_json::from_str::<AuditPolicy>(r#"{"unsafe_": []}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown field `unsafe_`, expected `safe` or `unsafe` at line 1 column 10"
        );
        let error = serde_json::from_str::<AuditPolicy>("1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: integer `1`, expected struct Raw at line 1 column 1"
        );
    }
}
