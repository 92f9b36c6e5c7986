//! [`AuditPolicy`]: the user's additions to the built-in classification.

use serde::Deserialize;

/// The user's additions to the built-in classification (`--policy FILE`):
/// `{"safe": ["mymodel.Net", "mymodel.*"], "unsafe": ["numpy.load"]}`.
/// A pattern is `module.name`, or `module.*` for everything in a module
/// (and its submodules). Unsafe entries win over safe ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPolicy {
    /// Globals to treat as safe.
    #[serde(default)]
    pub safe: Vec<String>,
    /// Globals to treat as unsafe.
    #[serde(default)]
    pub unsafe_: Vec<String>,
}

impl AuditPolicy {
    /// Reads a policy from JSON (`{"safe": [...], "unsafe": [...]}`).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            safe: Vec<String>,
            #[serde(default, rename = "unsafe")]
            unsafe_: Vec<String>,
        }
        let raw: Raw = serde_json::from_str(text)?;
        Ok(AuditPolicy {
            safe: raw.safe,
            unsafe_: raw.unsafe_,
        })
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
