//! What torch.package's exporter records on each graph node.

/// Merging attributes when a node is added again (PyTorch: `dict.update`).
pub trait Attributes: Default {
    /// Overwrites the fields that `newer` sets; keeps the others.
    fn update(&mut self, newer: Self);
}

impl Attributes for () {
    fn update(&mut self, _newer: Self) {}
}

/// What the exporter does with a module (PyTorch's `_ModuleProviderAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Source is written into the package.
    Intern,
    /// Loaded from the host environment.
    Extern,
    /// Replaced by a stub.
    Mock,
    /// Refused.
    Deny,
    /// `_mock` itself when repackaging a package that mocked something.
    RepackagedMockModule,
    /// Never packaged (`torch_package_importer`).
    Skip,
}

/// Why a node is an error (PyTorch's `PackagingErrorReason`). `Display` is
/// PyTorch's exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// An extension module was to be interned.
    IsExtensionModule,
    /// The module has no `__file__`.
    NoDunderFile,
    /// The module's source file is missing.
    SourceFileNotFound,
    /// Scanning the module's imports failed.
    DependencyResolutionFailed,
    /// No pattern matched the module.
    NoAction,
    /// A deny pattern matched.
    Denied,
    /// A mocked module is used by a pickle.
    MockedButStillUsed,
}

impl std::fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorReason::IsExtensionModule => {
                "Module is a C extension module. torch.package supports Python modules only."
            }
            ErrorReason::NoDunderFile => "Module had no __file__ defined.",
            ErrorReason::SourceFileNotFound => {
                "Module had a __file__, but we could not find it in your filesystem."
            }
            ErrorReason::DependencyResolutionFailed => "Dependency resolution failed.",
            ErrorReason::NoAction => {
                "Module did not match against any action pattern. Extern, mock, or intern it."
            }
            ErrorReason::Denied => "Module was denied by a pattern.",
            ErrorReason::MockedButStillUsed => {
                "Module was mocked out, but is still being used in the package. Please intern or extern the mocked modules if objects are supposed to be in the package."
            }
        })
    }
}

/// The attributes PyTorch's `PackageExporter` stores on a node; `None`
/// means "not set" so that [`Attributes::update`] behaves like `dict.update`.
///
/// ```
/// use tpkg_digraph::{Action, Attributes, NodeAttributes};
///
/// let mut node = NodeAttributes { action: Some(Action::Intern), ..Default::default() };
/// node.update(NodeAttributes { provided: Some(true), ..Default::default() });
/// assert_eq!(node.action, Some(Action::Intern));
/// assert_eq!(node.provided, Some(true));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAttributes {
    /// What happens to the module.
    pub action: Option<Action>,
    /// Whether the module's content has been provided (source, pickle).
    pub provided: Option<bool>,
    /// Whether the module is a package (`__init__.py`).
    pub is_package: Option<bool>,
    /// Whether the node is a pickle (`<package.resource>`), never source.
    pub is_pickle: Option<bool>,
    /// The module's source text, when interned.
    pub source: Option<String>,
    /// Whether the module's own dependencies are to be scanned.
    pub dependencies: Option<bool>,
    /// Why the node is an error.
    pub error: Option<ErrorReason>,
    /// More about the error (PyTorch's `error_context`).
    pub error_context: Option<String>,
}

impl Attributes for NodeAttributes {
    fn update(&mut self, newer: Self) {
        fn take<T>(slot: &mut Option<T>, newer: Option<T>) {
            if newer.is_some() {
                *slot = newer;
            }
        }
        take(&mut self.action, newer.action);
        take(&mut self.provided, newer.provided);
        take(&mut self.is_package, newer.is_package);
        take(&mut self.is_pickle, newer.is_pickle);
        take(&mut self.source, newer.source);
        take(&mut self.dependencies, newer.dependencies);
        take(&mut self.error, newer.error);
        take(&mut self.error_context, newer.error_context);
    }
}
