//! Auditing one decoded pickle: every global, call, instantiation, BUILD
//! and persistent id, at its byte offset, and the files nested in its byte
//! strings.

use tpkg_pickle::{Value, ValueGraph, ValueId};

use super::classify::{Context, Use, classify};
use super::findings::{At, Findings, NewFinding};
use super::nested::nested_audit;
use super::{FindingKind, Level};

/// Functions whose bytes argument is itself loaded as a file: the bytes
/// are audited as one (`torch.storage._load_from_bytes` is a nested
/// `torch.load` without `weights_only`).
const LOADS_BYTES: &[&str] = &[
    "torch.storage._load_from_bytes",
    "pickle.loads",
    "_pickle.loads",
    "torch.load",
];

/// Byte strings shorter than this are never nested files.
const NESTED_MIN: usize = 16;

/// One pickle to audit.
pub(crate) struct PickleAudit<'a> {
    pub graph: &'a ValueGraph,
    /// The pickle's bytes (to tell INST/OBJ from NEWOBJ by opcode).
    pub data: &'a [u8],
    /// Its label in findings: the record, or the pickle's role.
    pub record: &'a str,
    pub ctx: Context<'a>,
    /// How deep in nested files this pickle is.
    pub depth: usize,
    /// Globals of the package's own modules this pickle calls,
    /// instantiates or BUILDs: `(module, name, use)`, for the source audit
    /// to follow into their code.
    pub package_calls: std::cell::RefCell<Vec<(String, String, Use)>>,
}

fn global(graph: &ValueGraph, id: ValueId) -> Option<(&str, &str)> {
    match graph.get(id) {
        Value::Global { module, name } => Some((module, name)),
        _ => None,
    }
}

impl PickleAudit<'_> {
    /// Adds every finding of the pickle to `findings`.
    pub fn run(&self, findings: &mut Findings) {
        let graph = self.graph;
        let loaded = self.loaded_bytes();
        // The texts already audited as files: calls sharing their argument
        // through the memo would otherwise audit it once per call, and
        // nested files multiply that level after level.
        let mut audited = std::collections::HashSet::new();
        for (id, value) in graph.iter() {
            let at = At::offset(self.record, graph.origin(id));
            match value {
                Value::Global { module, name } => {
                    let (level, reason) = classify(&self.ctx, module, name, Use::Import);
                    findings.add(NewFinding {
                        level,
                        kind: FindingKind::Import,
                        at,
                        subject: format!("{module}.{name}"),
                        reason,
                    });
                }
                Value::Reduce {
                    callable,
                    args,
                    extra,
                } => {
                    let use_ = if self.is_enum_like(*callable, *args) {
                        Use::ClassWithValue
                    } else {
                        Use::Call
                    };
                    self.judge(findings, at, FindingKind::Call, *callable, use_);
                    if extra.state.is_some() {
                        self.judge(
                            findings,
                            at,
                            FindingKind::SetState,
                            *callable,
                            Use::SetState,
                        );
                    }
                    self.nested_argument(findings, id, *callable, *args, &mut audited);
                }
                Value::Object { class, extra, .. } => {
                    // NEWOBJ and NEWOBJ_EX: CPython requires a class and
                    // calls only its __new__. INST and OBJ call `class(*args)`.
                    let opcode = graph.origin(id).and_then(|at| self.data.get(at)).copied();
                    let (kind, use_) = match opcode {
                        Some(b'i' | b'o') => (FindingKind::Call, Use::Call),
                        _ => (FindingKind::Instantiate, Use::Instantiate),
                    };
                    self.judge(findings, at, kind, *class, use_);
                    if extra.state.is_some() {
                        self.judge(findings, at, FindingKind::SetState, *class, Use::SetState);
                    }
                }
                Value::PersistentId(pid) => self.persistent_id(findings, at, *pid),
                Value::Bytes(bytes) if bytes.len() >= NESTED_MIN || loaded.contains(&id) => {
                    self.nested_file(findings, id, bytes, loaded.contains(&id));
                }
                _ => {}
            }
        }
        for (target, _) in graph.loose_builds() {
            let at = At::offset(self.record, graph.origin(*target));
            match global(graph, *target) {
                Some((module, name)) => findings.add(NewFinding {
                    level: Level::Unsafe,
                    kind: FindingKind::SetState,
                    at,
                    subject: format!("{module}.{name}"),
                    reason: "BUILD on the global itself: sets attributes of a class, function or module of the loading process".into(),
                }),
                None => findings.add(NewFinding {
                    level: Level::Review,
                    kind: FindingKind::SetState,
                    at,
                    subject: format!("<{}>", graph.get(*target).kind()),
                    reason: "BUILD on an object a persistent id names".into(),
                }),
            }
        }
    }

    /// Whether a call is how an `Enum` member pickles: a class (by
    /// Python's naming convention, a capitalised last name) called with
    /// one plain value.
    fn is_enum_like(&self, callable: ValueId, args: ValueId) -> bool {
        let graph = self.graph;
        let capitalised = global(graph, callable).is_some_and(|(_, name)| {
            name.rsplit('.')
                .next()
                .and_then(|last| last.chars().next())
                .is_some_and(char::is_uppercase)
        });
        let one_plain_value = match graph.get(args) {
            Value::Tuple(items) => matches!(
                items.as_slice(),
                [only] if matches!(graph.get(*only), Value::Int(_) | Value::Str(_) | Value::Float(_) | Value::Bool(_))
            ),
            _ => false,
        };
        capitalised && one_plain_value
    }

    /// The bytes nodes that a call loads as a file.
    fn loaded_bytes(&self) -> std::collections::HashSet<ValueId> {
        let graph = self.graph;
        graph
            .iter()
            .filter_map(|(_, value)| match value {
                Value::Reduce { callable, args, .. } => Some((*callable, *args)),
                _ => None,
            })
            .filter(|(callable, _)| {
                global(graph, *callable)
                    .is_some_and(|(m, n)| LOADS_BYTES.contains(&format!("{m}.{n}").as_str()))
            })
            .filter_map(|(_, args)| match graph.get(args) {
                Value::Tuple(items) => items.first().copied(),
                _ => None,
            })
            .filter(|first| matches!(graph.get(*first), Value::Bytes(_)))
            .collect()
    }

    /// A finding for `target` used as `use_`: a global is classified; a
    /// computed value (a call's result, a persistent id) is unsafe when
    /// called (PyTorch never writes that) and for review otherwise.
    fn judge(
        &self,
        findings: &mut Findings,
        at: At<'_>,
        kind: FindingKind,
        target: ValueId,
        use_: Use,
    ) {
        match global(self.graph, target) {
            Some((module, name)) => {
                let (level, reason) = classify(&self.ctx, module, name, use_);
                findings.add(NewFinding {
                    level,
                    kind,
                    at,
                    subject: format!("{module}.{name}"),
                    reason,
                });
                let own = self.ctx.interned.iter().any(|m| {
                    module == m
                        || module
                            .strip_prefix(m.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                });
                if own && use_ != Use::Import {
                    self.package_calls.borrow_mut().push((
                        module.to_owned(),
                        name.to_owned(),
                        use_,
                    ));
                }
            }
            None => {
                let level = if use_ == Use::Call {
                    Level::Unsafe
                } else {
                    Level::Review
                };
                findings.add(NewFinding {
                    level,
                    kind,
                    at,
                    subject: format!("<{}>", self.graph.get(target).kind()),
                    reason: format!(
                        "{kind} of a computed value (a call's result or a persistent id)"
                    ),
                });
            }
        }
    }

    fn persistent_id(&self, findings: &mut Findings, at: At<'_>, pid: ValueId) {
        let graph = self.graph;
        let Value::Tuple(items) = graph.get(pid) else {
            let subject = match graph.get(pid) {
                Value::Str(text) => text.to_string_lossy(),
                other => format!("<{}>", other.kind()),
            };
            findings.add(NewFinding { level: Level::Review, kind: FindingKind::PersistentId, at, subject, reason: "a persistent id that is not a tuple (the pre-0.4 tar form's storages are strings)"
                    .into() });
            return;
        };
        let kind = items
            .first()
            .and_then(|k| graph.get(*k).as_str())
            .unwrap_or("?");
        match kind {
            "storage" => findings.add(NewFinding {
                level: Level::Safe,
                kind: FindingKind::PersistentId,
                at,
                subject: "storage".into(),
                reason: "a tensor storage record".into(),
            }),
            "reduce_package" => {
                // (reduce_package, id, function, args) or the older
                // (reduce_package, function, args).
                let function = if items.len() == 4 {
                    items.get(2)
                } else {
                    items.get(1)
                };
                match function {
                    Some(function) => {
                        self.judge(findings, at, FindingKind::Call, *function, Use::Call)
                    }
                    None => findings.add(NewFinding {
                        level: Level::Unsafe,
                        kind: FindingKind::PersistentId,
                        at,
                        subject: "reduce_package".into(),
                        reason:
                            "a reduce_package id without a function: PyTorch's importer fails on it"
                                .into(),
                    }),
                }
            }
            "module" => findings.add(NewFinding {
                level: Level::Review,
                kind: FindingKind::PersistentId,
                at,
                subject: "module".into(),
                reason: "a legacy torch.save module source record".into(),
            }),
            other => findings.add(NewFinding {
                level: Level::Review,
                kind: FindingKind::PersistentId,
                at,
                subject: other.to_owned(),
                reason: "a persistent id PyTorch's loaders do not know".into(),
            }),
        }
    }

    /// The bytes argument of a call that loads bytes as a file.
    fn nested_argument(
        &self,
        findings: &mut Findings,
        call: ValueId,
        callable: ValueId,
        args: ValueId,
        audited: &mut std::collections::HashSet<ValueId>,
    ) {
        let graph = self.graph;
        let Some((module, name)) = global(graph, callable) else {
            return;
        };
        if !LOADS_BYTES.contains(&format!("{module}.{name}").as_str()) {
            return;
        }
        let Value::Tuple(items) = graph.get(args) else {
            return;
        };
        match items.first().map(|first| (first, graph.get(*first))) {
            // Bytes nodes are audited where they are visited; a protocol
            // 0-2 `_codecs.encode(text, 'latin1')` is rebuilt here.
            Some((_, Value::Bytes(_))) => {}
            Some((
                first,
                Value::Reduce {
                    args: encode_args, ..
                },
            )) => {
                // `_codecs.encode(text, 'latin1')`: each text is audited
                // once, however many calls load it.
                let text = match graph.get(*encode_args) {
                    Value::Tuple(items) => items.first().copied(),
                    _ => None,
                };
                if text.is_some_and(|text| !audited.insert(text)) {
                    return;
                }
                match crate::tensors::pickled_bytes(graph, *first) {
                    Ok(bytes) => self.nested_file(findings, call, &bytes, true),
                    Err(error) => findings.add(NewFinding {
                        level: Level::Unsafe,
                        kind: FindingKind::Call,
                        at: At::offset(self.record, graph.origin(call)),
                        subject: format!("{module}.{name}"),
                        reason: format!("loads computed bytes as a file: {error}"),
                    }),
                }
            }
            _ => findings.add(NewFinding {
                level: Level::Unsafe,
                kind: FindingKind::Call,
                at: At::offset(self.record, graph.origin(call)),
                subject: format!("{module}.{name}"),
                reason: "loads bytes that are not in the pickle as a file".into(),
            }),
        }
    }

    /// Audits `bytes` (the value `id`) as a file when they are one: a zip,
    /// a legacy `torch.save`, a pickle. `loaded`: a call loads them as a
    /// file, so anything unreadable is unsafe.
    fn nested_file(&self, findings: &mut Findings, id: ValueId, bytes: &[u8], loaded: bool) {
        let place = format!(
            "{} byte {} (nested)",
            self.record,
            self.graph.origin(id).unwrap_or_default()
        );
        nested_audit(
            bytes,
            &place,
            self.ctx.policy,
            self.depth + 1,
            loaded,
            findings,
        );
    }
}
