//! `tpkg`: inspect, extract and write PyTorch `torch.package` archives
//! without Python.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use commands::{
    audit, cat, convert, diff, extract, graph, imports, inspect, pack, repack, show, tensors, tree,
    verify,
};

mod commands;

/// mimalloc: parsing Python sources allocates many small syntax-tree nodes;
/// glibc's malloc spent about 10% of `tpkg pack` in malloc/free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Inspect, extract and write PyTorch torch.package archives, without Python
/// and without running any code from the package.
///
/// Exit status: 0 on success, 1 when the package or a file cannot be read or
/// written (or packaging fails), 2 on a usage error. `verify` and `diff`
/// exit 0 when they find nothing, 1 when they find something, 2 when an
/// input cannot be read.
#[derive(Debug, Parser)]
#[command(name = "tpkg", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise a PyTorch file: its format (told from its content), and
    /// for zips the folder, bookkeeping records and every record.
    ///
    /// The text opens with a summary block (`"overview"` in `--json`, for
    /// every format): the PyTorch and Python versions the file records,
    /// each pickle and what it holds (state dict, whole module, TorchScript
    /// module, checkpoint dict and its keys), tensors and bytes by dtype,
    /// and a package's interned, extern and mocked module counts.
    ///
    /// Works on packages (zip or PyTorch's directory form), torch.save
    /// (zip or legacy), TorchScript, .pt2 and pickle files. Files that are
    /// not packages get a summary (`"summary"` in `--json`, null for
    /// packages): for torch.save and pickle files the number of pickles,
    /// the main object's type and first 20 keys, its tensors (count, bytes,
    /// storages, dtypes), and for legacy files sys_info, form and bytes
    /// after the data; for TorchScript the module's class, code files,
    /// tensors and constants; for .pt2 the models, tensors, weights and
    /// constants (tensors, records, bytes), sample inputs and AOTInductor
    /// folders. What cannot be read is listed in the summary's `errors`.
    ///
    /// Example: tpkg inspect --json model.pt
    Inspect {
        /// The file, or a package folder.
        package: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the package's files as a tree, exactly as PyTorch's
    /// `str(PackageImporter(PKG).file_structure(include=..., exclude=...))`.
    ///
    /// Patterns use `/` as separator: `*` matches within one path segment,
    /// `**` matches whole segments (`**/*.pkl`, `model/**`).
    ///
    /// Example: tpkg tree model.pt --include '**/*.pkl' --exclude '.data/**'
    Tree {
        /// The package file or folder.
        package: PathBuf,
        /// Keep records matching this pattern (repeatable; default `**`).
        #[arg(long, value_name = "PATTERN")]
        include: Vec<String>,
        /// Drop records matching this pattern (repeatable).
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
    },
    /// Decode a pickle record and print it, without running anything.
    ///
    /// Text output reads like Python's pprint, indented to the width:
    /// tensors as `tensor(float32[64, 3, 7, 7], storage 0)`, whole
    /// `nn.Module`s as their module tree (hooks and empty internals left
    /// out unless `--full`), nesting past `--depth` and long containers
    /// counted. `--json` prints the value image of the corpus manifests
    /// (tensors as `{"tensor": path}`).
    ///
    /// Example: tpkg show model.pt model/model.pkl
    Show {
        /// The package file or folder.
        package: PathBuf,
        /// The pickle's path inside the package, e.g. `data/values.pkl`;
        /// by default the file's main one (`data.pkl` of a torch.save or
        /// TorchScript file, a package's first pickle).
        resource: Option<String>,
        /// Print the JSON value image instead of text.
        #[arg(long)]
        json: bool,
        /// Levels of nesting written out; deeper values are counted
        /// (`Sequential(... 2 modules)`, `[... 3 items]`).
        #[arg(long, value_name = "N", default_value_t = 3, conflicts_with = "json")]
        depth: usize,
        /// Columns per line (default: the terminal's width, or 100 when
        /// not printing to a terminal).
        #[arg(long, value_name = "N", conflicts_with = "json")]
        width: Option<usize>,
        /// Show everything: module internals (hooks, empty `_` attributes,
        /// `training`), every item of long containers, whole strings.
        #[arg(long, conflicts_with = "json")]
        full: bool,
    },
    /// List every tensor of a pickle: dtype, shape, stride, offset, flags
    /// and the SHA-256 of its elements, read from the package's storages.
    ///
    /// Example: tpkg tensors --json model.pt model/state_dict.pkl
    Tensors {
        /// The package file or folder.
        package: PathBuf,
        /// The pickle's path inside the package, e.g. `model/model.pkl`;
        /// by default the file's main one.
        resource: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Convert a pickle's tensors (a state dict, or a whole module's state
    /// dict) to safetensors or to a torch.save file, without Python.
    ///
    /// `--to pt` keeps storages, views and Parameters as they are and opens
    /// with `torch.load(weights_only=True)`; `--to safetensors` writes each
    /// tensor's elements on their own, copying views contiguous (listed);
    /// `--to torchscript` writes a ScriptModule pickled into the package as
    /// a standalone TorchScript file.
    ///
    /// Example: tpkg convert model.pt model/model.pkl --to safetensors model.safetensors
    #[command(override_usage = "tpkg convert --to <TO> <PACKAGE> [RESOURCE] <OUT>")]
    Convert {
        /// The package file or folder.
        package: PathBuf,
        /// `[RESOURCE] OUT`: the pickle's path inside the package (e.g.
        /// `model/model.pkl`; by default the file's main one), then the
        /// output file (replaced atomically).
        #[arg(num_args = 1..=2, required = true, value_names = ["RESOURCE", "OUT"])]
        paths: Vec<String>,
        /// The output format.
        #[arg(long, value_enum)]
        to: Format,
        #[command(flatten)]
        durability: DurabilityArgs,
    },
    /// The dependencies PyTorch's exporter would add for each module's
    /// source, found statically (no module is imported).
    ///
    /// MODULE may be a glob pattern under a literal top-level package
    /// (`networkx.**`, `torch.nn.*`).
    ///
    /// Example: tpkg imports --python .tpkg/python 'networkx.algorithms.*' --json
    Imports {
        /// Modules or patterns.
        #[arg(required = true)]
        modules: Vec<String>,
        #[command(flatten)]
        search: SearchArgs,
        /// Print `{"<module>": ["<dep>", ...]}`.
        #[arg(long)]
        json: bool,
    },
    /// Package modules as PyTorch's PackageExporter would, statically.
    ///
    /// Each MODULE is saved with `save_module` (its source interned whatever
    /// the patterns say); its dependencies then go through the patterns in
    /// the order given on the command line, the first match deciding.
    /// `torch` and the standard library (but `sys` and `io`) are extern
    /// implicitly. On broken modules, prints PyTorch's grouped
    /// PackagingError and exits 1 without writing OUT.
    ///
    /// Example: tpkg pack nx.pt --python .tpkg/python --intern 'networkx.**'
    /// --extern '**' networkx
    Pack {
        /// The package to write (atomically).
        output: PathBuf,
        /// Modules to save (glob patterns under a literal top-level package).
        #[arg(required = true)]
        modules: Vec<String>,
        #[command(flatten)]
        search: SearchArgs,
        #[command(flatten)]
        patterns: PatternArgs,
        /// Show, for each broken module, the path that pulled it in.
        #[arg(long)]
        debug: bool,
        #[command(flatten)]
        durability: DurabilityArgs,
        /// Print `{"output", "interned", "externed", "mocked", "denied"}`.
        #[arg(long)]
        json: bool,
    },
    /// Repackage a package as PyTorch does when re-exporting a loaded one
    /// (`importer=(importer, sys_importer)`), statically.
    ///
    /// Interned sources are kept and rescanned, pickles kept (mangled
    /// globals demangled), storages and resources copied once. Patterns
    /// given here apply first; then the input's extern modules stay extern,
    /// its mocked modules stay mocked, and everything else is interned.
    ///
    /// Example: tpkg repack model.pt model2.pt --python .tpkg/python
    Repack {
        /// The package to read.
        input: PathBuf,
        /// The package to write (atomically).
        output: PathBuf,
        #[command(flatten)]
        search: SearchArgs,
        #[command(flatten)]
        patterns: PatternArgs,
        #[command(flatten)]
        durability: DurabilityArgs,
        /// Print `{"output", "interned", "externed", "mocked", "reencoded_pickles"}`.
        #[arg(long)]
        json: bool,
    },
    /// Check that everything in a package reads back: every record (size
    /// and CRC-32), every pickle (decodes, tensors within their storages),
    /// every source (parses), the bookkeeping records.
    ///
    /// Exit status: 0 no problems, 1 problems found, 2 unreadable package.
    ///
    /// Example: tpkg verify --json model.pt
    Verify {
        /// The package file or folder.
        package: PathBuf,
        /// Print `{"records", "pickles", "tensors", "sources", "problems"}`.
        #[arg(long)]
        json: bool,
    },
    /// Show what differs between two PyTorch files, in any formats:
    /// packages, torch.save (zip or legacy), TorchScript, .pt2, pickle files.
    ///
    /// Two zip files are compared record by record: records only in one,
    /// and for records in both, which sources, pickled values and tensors
    /// differ (the serialization id is ignored). When either file is not a
    /// zip, or their formats differ, their main objects (what `tpkg tensors`
    /// and `tpkg show` read by default) are compared: tensors matched by
    /// path, by dtype, shape and the SHA-256 of their elements in row-major
    /// order (strides and shared storages do not matter), and the values
    /// outside tensors by value image (a .pt2 archive's main object is its
    /// weights and constants: only its tensors are compared). So a zip
    /// torch.save and its legacy twin, or a pickle file and a torch.save of
    /// the same state dict, are the same. When the main objects are
    /// compared they decide the exit status; two zips of different formats
    /// have their records compared too, for information only.
    ///
    /// `--json` prints `{"only_in_a", "only_in_b", "differ", "same"}` (the
    /// records; empty when not compared), `"formats": {"a", "b"}`,
    /// `"compared"` (`["records"]`, `["object"]` or both) and `"object"`
    /// (null unless compared): `{"tensors": {"only_in_a", "only_in_b",
    /// "differ": [{"path", "changed": ["dtype"|"shape"|"elements"], "a",
    /// "b": {"dtype", "shape", "sha256"}, "detail"}], "same"}, "values":
    /// {"status": "same"|"differ"|"not compared"|"unreadable",
    /// "differences": [{"path", "a", "b"}], "note"}}`.
    ///
    /// Exit status: 0 same content, 1 different, 2 unreadable file.
    ///
    /// Example: tpkg diff model.pt model_legacy.pt --json
    Diff {
        /// The first file.
        a: PathBuf,
        /// The second file.
        b: PathBuf,
        /// Print one JSON object (see above).
        #[arg(long)]
        json: bool,
    },
    /// Tell what loading each file in PyTorch would run, without running
    /// it: every global each pickle imports and calls (with byte offsets),
    /// interned code that runs at import time, dynamic and dangerous
    /// imports, extern modules, TorchScript, files nested in files, and
    /// container anomalies that make zip parsers disagree. Findings are
    /// safe, review or unsafe (SECURITY.md says which and why).
    ///
    /// Takes files and folders (walked recursively; every file judged by
    /// its content, not its name) and audits them on all cores.
    ///
    /// Exit status: 0 nothing at or above --fail-on, 1 something is, 2 a
    /// file cannot be read (never clean).
    ///
    /// Example: tpkg audit models/ --format sarif > tpkg.sarif
    Audit {
        /// Files (any PyTorch format) or folders.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format. For one file, JSON is its report
        /// (`{"format", "findings": [...], "pickles", "sources"}`); for
        /// several, `{"files": [{"path", "verdict", ...report}], "summary"}`.
        #[arg(long, value_enum, default_value = "text")]
        format: audit::OutputFormat,
        /// Same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// A JSON policy: `{"safe": ["mymodel.*"], "unsafe": ["numpy.load"]}`.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// The level that makes the exit status 1.
        #[arg(long, value_enum, default_value = "unsafe")]
        fail_on: FailOn,
        /// List every finding: each review finding (not a few examples per
        /// kind) and the safe ones too.
        #[arg(long)]
        all: bool,
    },
    /// Draw a file's module dependency graph: each pickle and the modules
    /// its globals name, each interned module and the modules it imports,
    /// and what each module is (interned, extern, mocked), as PyTorch's
    /// exporter recorded it. Nothing is imported or run.
    ///
    /// DOT is PyTorch's `PackageExporter.dependency_graph_string()` text,
    /// followed by one line per node giving its kind's shape and colour
    /// (`--plain` leaves those out: PyTorch's text byte for byte). SVG is
    /// laid out by tpkg itself (no Graphviz needed), with a legend. Both
    /// fill pickles green, interned modules blue, extern grey, mocked
    /// orange, `torch_package_importer`/`_mock` purple, and modules a
    /// pickle names that the package does not provide red. A graph of
    /// more than 200 edges is laid out without crossing reduction, which
    /// would take minutes (`--depth` and `--collapse-extern` make big
    /// graphs readable). Files
    /// that are not packages (torch.save, TorchScript, .pt2, legacy, pickle
    /// files) have no sources: their graph is their pickles and the modules
    /// those name. Records that cannot be read are left out with a warning.
    ///
    /// Example: tpkg graph model.pt --format svg -o model.svg
    Graph {
        /// The file, or a package folder.
        package: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "dot")]
        format: graph::GraphFormat,
        /// Write here (atomically) instead of to standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// DOT without node attributes (PyTorch's exact text).
        #[arg(long)]
        plain: bool,
        /// Merge extern modules into their top-level package
        /// (`torch.nn.modules.conv` into `torch`): a smaller picture.
        #[arg(long)]
        collapse_extern: bool,
        /// Keep only nodes within N edges of the pickles (of the modules
        /// nothing imports, in a file without pickles).
        #[arg(long, value_name = "N")]
        depth: Option<usize>,
        #[command(flatten)]
        durability: DurabilityArgs,
    },
    /// Write one record's raw bytes to standard output.
    ///
    /// Example: tpkg cat model.pt .data/extern_modules
    Cat {
        /// The package file or folder.
        package: PathBuf,
        /// The record name, without the package folder (e.g. `.data/version`).
        record: String,
    },
    /// Unzip a package into PyTorch's directory form: a folder in DIR named after the package folder.
    ///
    /// Never writes outside DIR and never overwrites an existing folder.
    /// Every file and folder is fsynced before the folder appears (unless
    /// `--no-fsync`).
    ///
    /// Example: tpkg extract model.pt out/
    Extract {
        /// The package file.
        package: PathBuf,
        /// Where to create the package folder.
        dir: PathBuf,
        #[command(flatten)]
        durability: DurabilityArgs,
    },
}

/// Where modules are found (`imports`, `pack`, `repack`).
#[derive(Debug, clap::Args)]
struct SearchArgs {
    /// A folder to search for modules (repeatable; like sys.path).
    #[arg(long = "path", value_name = "DIR")]
    paths: Vec<PathBuf>,
    /// Read sys.path, built-in modules and version from this interpreter.
    #[arg(long, value_name = "PY")]
    python: Option<PathBuf>,
}

/// `--no-fsync`, the same on every command that writes files (`convert`,
/// `pack`, `repack`, `extract`, `graph -o`).
#[derive(Debug, Clone, Copy, clap::Args)]
struct DurabilityArgs {
    /// Do not fsync the output before it appears. By default it is
    /// fsynced, so it survives a power loss as well as a crash; without
    /// fsync it still appears complete or not at all (atomic rename), and
    /// its trip to the disk is left to the kernel, as `cp` leaves it.
    #[arg(long)]
    no_fsync: bool,
}

impl DurabilityArgs {
    /// The library's name for the choice.
    fn durability(self) -> tpkg::archive::Durability {
        if self.no_fsync {
            tpkg::archive::Durability::NoFsync
        } else {
            tpkg::archive::Durability::Fsync
        }
    }
}

/// The exporter's patterns (`pack`, `repack`). Their order across flags
/// matters and is read from the matches by [`ordered_rules`]; these fields
/// only declare them.
#[derive(Debug, clap::Args)]
struct PatternArgs {
    /// Intern modules matching PAT (repeatable).
    #[arg(long, value_name = "PAT")]
    intern: Vec<String>,
    /// Extern modules matching PAT (repeatable).
    #[arg(long = "extern", value_name = "PAT")]
    extern_: Vec<String>,
    /// Mock modules matching PAT (repeatable).
    #[arg(long, value_name = "PAT")]
    mock: Vec<String>,
    /// Deny modules matching PAT (repeatable).
    #[arg(long, value_name = "PAT")]
    deny: Vec<String>,
}

/// `tpkg audit --fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    /// Any finding that is not safe.
    Review,
    /// Unsafe findings only.
    Unsafe,
}

/// Output formats of `tpkg convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A safetensors file.
    Safetensors,
    /// A torch.save file.
    Pt,
    /// A standalone TorchScript file (`torch.jit.load`, tch's `CModule`),
    /// from a ScriptModule pickled into the package.
    Torchscript,
}

/// `--intern/--extern/--mock/--deny` in the order they were given: the
/// first registered pattern that matches a module decides its action.
fn ordered_rules(matches: &ArgMatches) -> Vec<pack::Rule> {
    let mut rules: Vec<(usize, pack::Rule)> = Vec::new();
    type MakeRule = fn(String) -> pack::Rule;
    let kinds: [(&str, MakeRule); 4] = [
        ("intern", pack::Rule::Intern),
        ("extern_", pack::Rule::Extern),
        ("mock", pack::Rule::Mock),
        ("deny", pack::Rule::Deny),
    ];
    for (id, make) in kinds {
        let (Some(indices), Some(values)) =
            (matches.indices_of(id), matches.get_many::<String>(id))
        else {
            continue;
        };
        rules.extend(indices.zip(values).map(|(i, v)| (i, make(v.clone()))));
    }
    rules.sort_by_key(|(index, _)| *index);
    rules.into_iter().map(|(_, rule)| rule).collect()
}

/// The `pack` or `repack` subcommand's patterns, in command-line order.
fn subcommand_rules(matches: &ArgMatches, subcommand: &str) -> Vec<pack::Rule> {
    matches
        .subcommand_matches(subcommand)
        .map(ordered_rules)
        .unwrap_or_default()
}

/// The stack of the thread a command runs on.
const COMMAND_STACK_BYTES: usize = 256 << 20;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // Values nest up to `show::MAX_DEPTH` levels and rendering them
    // recurses; a debug build's frames overflow the main thread's 8 MiB
    // there, so commands run on a thread with room to spare (as rustc does).
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("tpkg".to_owned())
            .stack_size(COMMAND_STACK_BYTES)
            .spawn_scoped(scope, || run(cli, &matches))
            .map(|thread| thread.join())
    });
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(error) => Err(anyhow::Error::new(error).context("cannot start the command's thread")),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                // `tpkg cat big.pt x | head` is not an error.
                return ExitCode::SUCCESS;
            }
            // One line: each cause after the one it explains.
            eprintln!("tpkg: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Calls the command's `run` (in `commands`) with its arguments.
fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let done = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Inspect { package, json } => inspect::run(&package, json).map(done),
        Command::Tree {
            package,
            include,
            exclude,
        } => tree::run(&package, include, exclude).map(done),
        Command::Show {
            package,
            resource,
            json,
            depth,
            width,
            full,
        } => {
            let text = show::Text { depth, width, full };
            show::run(&package, resource, json, &text).map(done)
        }
        Command::Tensors {
            package,
            resource,
            json,
        } => tensors::run(&package, resource.as_deref(), json).map(done),
        Command::Convert {
            package,
            paths,
            to,
            durability,
        } => convert::run(&package, &paths, to, durability.durability()).map(done),
        Command::Imports {
            modules,
            search,
            json,
        } => imports::run(&modules, search.paths, search.python.as_deref(), json).map(done),
        Command::Pack {
            output,
            modules,
            search: SearchArgs { paths, python },
            debug,
            durability,
            json,
            ..
        } => pack::run(pack::PackJob {
            output: &output,
            paths,
            python: python.as_deref(),
            rules: subcommand_rules(matches, "pack"),
            modules: &modules,
            debug,
            durability: durability.durability(),
            json,
        })
        .map(done),
        Command::Repack {
            input,
            output,
            search: SearchArgs { paths, python },
            durability,
            json,
            ..
        } => {
            let rules = subcommand_rules(matches, "repack");
            let durability = durability.durability();
            repack::run(
                &input,
                &output,
                &paths,
                python.as_deref(),
                rules,
                durability,
                json,
            )
            .map(done)
        }
        Command::Verify { package, json } => verify::run(&package, json),
        Command::Diff { a, b, json } => diff::run(&a, &b, json),
        Command::Audit {
            paths,
            format,
            json,
            policy,
            fail_on,
            all,
        } => audit::run(audit::AuditArgs {
            paths,
            format: if json {
                audit::OutputFormat::Json
            } else {
                format
            },
            policy,
            fail_on: match fail_on {
                FailOn::Review => tpkg::audit::Level::Review,
                FailOn::Unsafe => tpkg::audit::Level::Unsafe,
            },
            all,
        }),
        Command::Graph {
            package,
            format,
            output,
            plain,
            collapse_extern,
            depth,
            durability,
        } => graph::run(graph::GraphArgs {
            package: &package,
            format,
            output: output.as_deref(),
            plain,
            collapse_extern,
            depth,
            durability: durability.durability(),
        })
        .map(done),
        Command::Cat { package, record } => cat::run(&package, &record).map(done),
        Command::Extract {
            package,
            dir,
            durability,
        } => extract::run(&package, &dir, durability.durability()).map(done),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_error| io_error.kind() == io::ErrorKind::BrokenPipe)
    })
}
