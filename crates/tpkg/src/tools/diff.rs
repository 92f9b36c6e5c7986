//! `diff`: what differs between two PyTorch files, by meaning where it can.
//!
//! Two zip files (packages, `torch.save`, TorchScript, `.pt2`) are compared
//! record by record ([`diff`]). Records are matched by name (the package
//! folder and the serialization id aside). Records with different bytes are
//! explained by kind: a source gives its first differing line; a pickle is
//! decoded on both sides and its value image and tensors (dtype, shape,
//! stride, offset and a SHA-256 of the elements) compared, so a re-encoded
//! pickle holding the same values reads as "same values"; anything else
//! gives sizes.
//!
//! Any two files, in any formats, are compared by [`diff_files`]: record by
//! record when both are zips, and by their main objects (what `tpkg
//! tensors` and `tpkg show` read when no pickle is named) when either is
//! not a zip or their formats differ, so a zip `torch.save` and its legacy
//! twin, a `torch.save` and a `.pt2` of the same model, or a pickle file and
//! a `torch.save` can be compared. Main objects are compared by their
//! tensors, matched by path (dtype, shape and the SHA-256 of the elements
//! in row-major order, so strides and storage sharing do not matter), and
//! by their value images outside tensors ([`crate::show::image`]).
//!
//! ```
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let package = |source: &[u8]| -> Result<PackageReader, Box<dyn std::error::Error>> {
//!     let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//!     writer.write_record("m.py", source)?;
//!     Ok(PackageReader::from_bytes(writer.finish()?)?)
//! };
//! let report = tpkg::diff::diff(&package(b"a = 1\n")?, &package(b"a = 2\n")?);
//! assert_eq!(report.differ[0].record, "m.py");
//! assert_eq!(report.differ[0].detail, "source differs from line 1");
//! assert_eq!(report.compared, [tpkg::diff::Compared::Records]);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tpkg_archive::PackageReader;

use crate::formats::{FileFormat, OpenError, PyTorchFile, starts_like_pickle};
use crate::tensors::{DType, PackageTensors, TensorSummary, tensor_sha256};

mod values;

use values::{value_differences, value_image};

/// Names serialised in lowercase, shown as they serialise.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// The name, as serialised.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

named_enum! {
    /// How a record that differs was compared.
    RecordKind {
        /// A Python source: its first differing line.
        Source => "source",
        /// A pickle: its values and tensors.
        Pickle => "pickle",
        /// Anything else: its sizes.
        Binary => "binary",
    }
}

named_enum! {
    /// What [`diff_files`] compared.
    Compared {
        /// The records, by name (both files are zips).
        Records => "records",
        /// The main objects (a file is not a zip, or the formats differ).
        Object => "object",
    }
}

named_enum! {
    /// What differs between two tensors at one path.
    TensorChange {
        /// The dtype.
        Dtype => "dtype",
        /// The shape.
        Shape => "shape",
        /// The elements (their SHA-256).
        Elements => "elements",
    }
}

/// One record present in both packages with different bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The record.
    pub record: String,
    /// What the record is, as compared.
    pub kind: RecordKind,
    /// What differs, in words.
    pub detail: String,
}

/// The formats of the two files compared, told from their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Formats {
    /// The first file's.
    pub a: FileFormat,
    /// The second file's.
    pub b: FileFormat,
}

/// What [`diff`] or [`diff_files`] found.
///
/// The first four fields compare records and stay empty when records were
/// not compared (see [`compared`](Self::compared)). When the main objects
/// were compared, they decide [`is_same`](Self::is_same): records of two
/// formats never match, and are then listed for information only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Records only in the first package.
    pub only_in_a: Vec<String>,
    /// Records only in the second package.
    pub only_in_b: Vec<String>,
    /// Records in both, with different bytes.
    pub differ: Vec<Difference>,
    /// Records in both with identical bytes.
    pub same: usize,
    /// The two files' formats.
    pub formats: Option<Formats>,
    /// What was compared, in order: `records` (both files are zips),
    /// `object` (their main objects: a file is not a zip, or the formats
    /// differ).
    pub compared: Vec<Compared>,
    /// The main objects' comparison, when `compared` holds `object`.
    pub object: Option<ObjectDiff>,
}

impl DiffReport {
    /// The files hold the same: the main objects the same tensors and
    /// values when they were compared, else the packages the same records
    /// with the same bytes.
    pub fn is_same(&self) -> bool {
        match &self.object {
            Some(object) => object.is_same(),
            None => {
                self.only_in_a.is_empty() && self.only_in_b.is_empty() && self.differ.is_empty()
            }
        }
    }
}

/// Two main objects compared: their tensors by path, their values outside
/// tensors by value image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectDiff {
    /// The tensors.
    pub tensors: TensorsDiff,
    /// The values outside tensors.
    pub values: ValuesDiff,
}

impl ObjectDiff {
    /// Same tensors and (where compared) same values.
    pub fn is_same(&self) -> bool {
        self.tensors.only_in_a.is_empty()
            && self.tensors.only_in_b.is_empty()
            && self.tensors.differ.is_empty()
            && matches!(
                self.values.status,
                ValuesStatus::Same | ValuesStatus::NotCompared
            )
    }
}

/// Tensors matched by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TensorsDiff {
    /// Paths only in the first object, in its order.
    pub only_in_a: Vec<String>,
    /// Paths only in the second object, in its order.
    pub only_in_b: Vec<String>,
    /// Tensors at one path whose dtype, shape or elements differ.
    pub differ: Vec<TensorDifference>,
    /// Tensors with the same dtype, shape and elements.
    pub same: usize,
}

/// One tensor path in both objects whose tensors differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorDifference {
    /// The tensor's path.
    pub path: String,
    /// What differs: any of `dtype`, `shape`, `elements`.
    pub changed: Vec<TensorChange>,
    /// The first object's tensor.
    pub a: TensorDigest,
    /// The second object's tensor.
    pub b: TensorDigest,
    /// What differs, in words.
    pub detail: String,
}

/// What a tensor is compared by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorDigest {
    /// The dtype (serialised by PyTorch's name, `float32`); `None` (`?`)
    /// for an unreadable tensor.
    #[serde(serialize_with = "dtype_name")]
    pub dtype: Option<DType>,
    /// The shape.
    pub shape: Vec<u64>,
    /// SHA-256 of the elements in row-major order, little-endian (as the
    /// corpus manifests and `tpkg tensors` give it); an unreadable
    /// tensor's error instead.
    pub sha256: String,
}

/// A digest's dtype name, `?` for none.
fn name(dtype: Option<DType>) -> &'static str {
    dtype.map_or("?", DType::name)
}

fn dtype_name<S: serde::Serializer>(
    dtype: &Option<DType>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name(*dtype))
}

/// The value images compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValuesDiff {
    /// The outcome.
    pub status: ValuesStatus,
    /// Where the values differ (at most [`MAX_VALUE_DIFFERENCES`]).
    pub differences: Vec<ValueDifference>,
    /// Why the values were not compared, or could not be.
    pub note: Option<String>,
}

/// How two value images compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum ValuesStatus {
    /// Equal images.
    #[default]
    #[serde(rename = "same")]
    Same,
    /// Different images.
    #[serde(rename = "differ")]
    Differ,
    /// Not compared: a `.pt2` archive's main object is its weights and
    /// constants alone, so only tensors are compared. Not a difference.
    #[serde(rename = "not compared")]
    NotCompared,
    /// An image could not be made (too deep or too large): a difference.
    #[serde(rename = "unreadable")]
    Unreadable,
}

impl ValuesStatus {
    /// `same`, `differ`, `not compared` or `unreadable`.
    pub fn name(self) -> &'static str {
        match self {
            ValuesStatus::Same => "same",
            ValuesStatus::Differ => "differ",
            ValuesStatus::NotCompared => "not compared",
            ValuesStatus::Unreadable => "unreadable",
        }
    }
}

/// One place where two value images differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueDifference {
    /// Dict keys and item indices from the main object, joined by `.`
    /// (empty for the object itself).
    pub path: String,
    /// The first object's value there (compact value image JSON, at most
    /// 120 characters), or `(absent)`.
    pub a: String,
    /// The second object's value there, or `(absent)`.
    pub b: String,
}

/// Most value differences listed.
pub const MAX_VALUE_DIFFERENCES: usize = 20;

const IGNORED: &str = ".data/serialization_id";

/// Compares two zip files (or package folders) record by record. See the
/// [module docs](self).
pub fn diff(a: &PackageReader, b: &PackageReader) -> DiffReport {
    let names = |reader: &PackageReader| -> Vec<String> {
        reader
            .records()
            .iter()
            .map(|r| r.name.clone())
            .filter(|n| n != IGNORED)
            .collect()
    };
    let (names_a, names_b) = (names(a), names(b));
    let mut report = DiffReport {
        only_in_a: names_a
            .iter()
            .filter(|n| !b.has_record(n))
            .cloned()
            .collect(),
        only_in_b: names_b
            .iter()
            .filter(|n| !a.has_record(n))
            .cloned()
            .collect(),
        formats: Some(Formats {
            a: crate::formats::zip_format(a),
            b: crate::formats::zip_format(b),
        }),
        compared: vec![Compared::Records],
        ..Default::default()
    };
    for name in names_a.iter().filter(|n| b.has_record(n)) {
        // Large records (storages) are compared by streaming, never held.
        let (size_a, size_b) = (
            a.record(name).map(|r| r.size).unwrap_or(0),
            b.record(name).map(|r| r.size).unwrap_or(0),
        );
        if size_a.max(size_b) > crate::files::records::MAX_PICKLE_BYTES {
            match streams_equal(a, b, name) {
                Ok(true) => report.same += 1,
                Ok(false) => report.differ.push(Difference {
                    record: name.clone(),
                    kind: RecordKind::Binary,
                    detail: format!("{size_a} bytes vs {size_b} bytes, contents differ"),
                }),
                Err(error) => report.differ.push(Difference {
                    record: name.clone(),
                    kind: RecordKind::Binary,
                    detail: format!("unreadable: {error}"),
                }),
            }
            continue;
        }
        let (bytes_a, bytes_b) = match (a.read(name), b.read(name)) {
            (Ok(x), Ok(y)) => (x, y),
            (x, y) => {
                let error = x
                    .err()
                    .or(y.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                report.differ.push(Difference {
                    record: name.clone(),
                    kind: RecordKind::Binary,
                    detail: format!("unreadable: {error}"),
                });
                continue;
            }
        };
        let same = bytes_a == bytes_b;
        // Compared: the process need not keep its pages of either input.
        let _ = (a.release(name), b.release(name));
        if same {
            report.same += 1;
            continue;
        }
        let difference = if name.ends_with(".py") {
            Difference {
                record: name.clone(),
                kind: RecordKind::Source,
                detail: source_difference(&bytes_a, &bytes_b),
            }
        } else if starts_like_pickle(&bytes_a) && starts_like_pickle(&bytes_b) {
            Difference {
                record: name.clone(),
                kind: RecordKind::Pickle,
                detail: pickle_difference(a, b, name),
            }
        } else {
            Difference {
                record: name.clone(),
                kind: RecordKind::Binary,
                detail: format!("{} bytes vs {} bytes", bytes_a.len(), bytes_b.len()),
            }
        };
        report.differ.push(difference);
    }
    report
}

/// Whether record `name` has the same bytes in both packages, read in 1 MiB
/// chunks.
fn streams_equal(a: &PackageReader, b: &PackageReader, name: &str) -> Result<bool, String> {
    use std::io::Read;
    let mut left = a.open_record(name).map_err(|e| e.to_string())?;
    let mut right = b.open_record(name).map_err(|e| e.to_string())?;
    if left.len() != right.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = left.read(&mut x).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(true);
        }
        right.read_exact(&mut y[..n]).map_err(|e| e.to_string())?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

fn source_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let line = a
        .split('\n')
        .zip(b.split('\n'))
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.split('\n').count().min(b.split('\n').count()))
        + 1;
    format!("source differs from line {line}")
}

/// Tensors of a pickle by path, comparable: their summaries, or why they
/// cannot be read.
fn tensor_table(tensors: &PackageTensors<'_>) -> BTreeMap<String, Result<TensorSummary, String>> {
    (0..tensors.len())
        .map(|i| {
            let path = tensors.path(i).to_owned();
            let value = match tensors.view(i) {
                Ok(view) => {
                    let summary = TensorSummary::of(&path, &view);
                    tensors.release_storage(&view.spec().storage.key);
                    Ok(summary)
                }
                Err(error) => Err(error.to_string()),
            };
            (path, value)
        })
        .collect()
}

fn pickle_difference(a: &PackageReader, b: &PackageReader, name: &str) -> String {
    let (tensors_a, tensors_b) =
        match (PackageTensors::load(a, name), PackageTensors::load(b, name)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(error), _) | (_, Err(error)) => return format!("pickle does not load: {error}"),
        };
    let image_a = crate::show::image(tensors_a.graph()).ok();
    let image_b = crate::show::image(tensors_b.graph()).ok();
    let (table_a, table_b) = (tensor_table(&tensors_a), tensor_table(&tensors_b));
    let differing: Vec<&String> = table_a
        .keys()
        .chain(table_b.keys().filter(|k| !table_a.contains_key(*k)))
        .filter(|k| table_a.get(*k) != table_b.get(*k))
        .collect();
    match (image_a == image_b, differing.is_empty()) {
        (true, true) => "same values and tensors, different bytes".to_owned(),
        (false, true) => "values differ; tensors are the same".to_owned(),
        (same_values, false) => {
            let shown: Vec<&str> = differing.iter().take(5).map(|s| s.as_str()).collect();
            let more = differing.len().saturating_sub(shown.len());
            format!(
                "{}{} tensor(s) differ: {}{}",
                if same_values { "" } else { "values differ; " },
                differing.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        }
    }
}

/// Compares any two PyTorch files: record by record when both are zips
/// ([`diff`]); by their main objects ([`ObjectDiff`]) when either is not a
/// zip, or both are zips of different formats (their records are then
/// compared too, for information: the objects decide). See the
/// [module docs](self).
///
/// A main object that cannot be read when it is compared (a damaged
/// legacy file, tensors past their storage, a package without a pickle)
/// is an error.
///
/// ```
/// use tpkg::formats::PyTorchFile;
///
/// # let dir = "../../tests/data/golden/torch-1.10.2/torch_save";
/// let zip = PyTorchFile::open(format!("{dir}/state_dict.pt"))?;
/// let legacy = PyTorchFile::open(format!("{dir}/state_dict_legacy.pt"))?;
/// let report = tpkg::diff::diff_files(&zip, &legacy)?;
/// assert_eq!(report.compared, [tpkg::diff::Compared::Object]);
/// assert!(report.is_same());
/// let object = report.object.unwrap();
/// assert!(object.tensors.same > 0 && object.tensors.differ.is_empty());
/// # Ok::<(), tpkg::formats::OpenError>(())
/// ```
pub fn diff_files(a: &PyTorchFile, b: &PyTorchFile) -> Result<DiffReport, OpenError> {
    let formats = Formats {
        a: a.format(),
        b: b.format(),
    };
    let mut report = match (a, b) {
        (PyTorchFile::Zip { reader: x, .. }, PyTorchFile::Zip { reader: y, .. }) => {
            let report = diff(x, y);
            if formats.a == formats.b {
                return Ok(report);
            }
            report
        }
        _ => DiffReport::default(),
    };
    report.formats = Some(formats);
    report.object = Some(compare_objects(a, b)?);
    report.compared.push(Compared::Object);
    Ok(report)
}

fn compare_objects(a: &PyTorchFile, b: &PyTorchFile) -> Result<ObjectDiff, OpenError> {
    let tensors_a = a.tensors(None)?;
    let tensors_b = b.tensors(None)?;
    let mut object = ObjectDiff {
        tensors: compare_tensors(&digests(&tensors_a), &digests(&tensors_b)),
        ..Default::default()
    };
    object.values = match (value_image(a, &tensors_a), value_image(b, &tensors_b)) {
        (None, _) | (_, None) => ValuesDiff {
            status: ValuesStatus::NotCompared,
            differences: Vec::new(),
            note: Some(
                "a .pt2 archive's main object is its weights and constants: only tensors are compared"
                    .to_owned(),
            ),
        },
        (Some(Err(error)), _) | (_, Some(Err(error))) => ValuesDiff {
            status: ValuesStatus::Unreadable,
            differences: Vec::new(),
            note: Some(error.to_string()),
        },
        (Some(Ok(x)), Some(Ok(y))) => {
            let mut differences = Vec::new();
            value_differences(&x, &y, "", &mut differences);
            // Images that differ only where a tensor is (or is not) have
            // the same values: the tensors are compared above.
            ValuesDiff {
                status: if differences.is_empty() {
                    ValuesStatus::Same
                } else {
                    ValuesStatus::Differ
                },
                differences,
                note: None,
            }
        }
    };
    Ok(object)
}

/// Every tensor by path, in the object's order: its digest.
fn digests(tensors: &PackageTensors<'_>) -> Vec<(String, TensorDigest)> {
    (0..tensors.len())
        .map(|i| {
            let path = tensors.path(i).to_owned();
            let digest = match tensors.view(i) {
                Ok(view) => {
                    let digest = TensorDigest {
                        dtype: Some(view.dtype()),
                        shape: view.shape().to_vec(),
                        sha256: tensor_sha256(&view),
                    };
                    // Hashed: the process need not keep its pages.
                    tensors.release_storage(&view.spec().storage.key);
                    digest
                }
                Err(error) => TensorDigest {
                    dtype: None,
                    shape: Vec::new(),
                    sha256: format!("unreadable: {error}"),
                },
            };
            (path, digest)
        })
        .collect()
}

fn compare_tensors(a: &[(String, TensorDigest)], b: &[(String, TensorDigest)]) -> TensorsDiff {
    let in_a: HashMap<&str, &TensorDigest> = a.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let in_b: HashMap<&str, &TensorDigest> = b.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let mut diff = TensorsDiff {
        only_in_a: a
            .iter()
            .filter(|(p, _)| !in_b.contains_key(p.as_str()))
            .map(|(p, _)| p.clone())
            .collect(),
        only_in_b: b
            .iter()
            .filter(|(p, _)| !in_a.contains_key(p.as_str()))
            .map(|(p, _)| p.clone())
            .collect(),
        ..Default::default()
    };
    for (path, x) in a {
        let Some(y) = in_b.get(path.as_str()) else {
            continue;
        };
        let mut changed = Vec::new();
        let mut detail = Vec::new();
        if x.dtype != y.dtype {
            changed.push(TensorChange::Dtype);
            detail.push(format!("dtype {} vs {}", name(x.dtype), name(y.dtype)));
        }
        if x.shape != y.shape {
            changed.push(TensorChange::Shape);
            detail.push(format!("shape {:?} vs {:?}", x.shape, y.shape));
        }
        if x.sha256 != y.sha256 {
            changed.push(TensorChange::Elements);
            detail.push("elements differ".to_owned());
        }
        if changed.is_empty() {
            diff.same += 1;
        } else {
            diff.differ.push(TensorDifference {
                path: path.clone(),
                changed,
                a: x.clone(),
                b: (*y).clone(),
                detail: detail.join(", "),
            });
        }
    }
    diff
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_compare_by_dtype_shape_and_elements() {
        let digest = |dtype, shape: &[u64], sha: &str| TensorDigest {
            dtype: Some(dtype),
            shape: shape.to_vec(),
            sha256: sha.to_owned(),
        };
        let a = vec![
            ("w".to_owned(), digest(DType::Float32, &[2], "aa")),
            ("b".to_owned(), digest(DType::Float32, &[2], "bb")),
            ("x".to_owned(), digest(DType::Int64, &[1], "cc")),
        ];
        let b = vec![
            ("b".to_owned(), digest(DType::Float32, &[2], "bb")),
            ("w".to_owned(), digest(DType::Float64, &[1, 2], "dd")),
            ("y".to_owned(), digest(DType::Int64, &[1], "cc")),
        ];
        let diff = compare_tensors(&a, &b);
        assert_eq!(
            (diff.only_in_a, diff.only_in_b, diff.same),
            (vec!["x".to_owned()], vec!["y".to_owned()], 1)
        );
        assert_eq!(diff.differ[0].path, "w");
        assert_eq!(
            diff.differ[0].changed,
            [
                TensorChange::Dtype,
                TensorChange::Shape,
                TensorChange::Elements
            ]
        );
        assert_eq!(
            diff.differ[0].detail,
            "dtype float32 vs float64, shape [2] vs [1, 2], elements differ"
        );
    }
}
