//! `torch.export` archives (`.pt2`): the weights and constants of the
//! exported program, read without Python.
//!
//! `torch.export.save` (torch 2.13) writes each group of tensors sharing a
//! storage as one raw record, `data/weights/<path_name>` (constants under
//! `data/constants/`), and describes every tensor in
//! `data/weights/<model>_weights_config.json` (`model_weights_config.json`
//! for the default model): `{"config": {fqn: {"path_name", "is_param",
//! "use_pickle", "tensor_meta": {"dtype", "sizes", "strides",
//! "storage_offset", "requires_grad", ...}}}}`, dtypes as
//! `torch._export.serde.schema.ScalarType` numbers. The loader views each
//! raw record as a flat storage and the tensor as a strided view of it,
//! which is what this module gives, bounds-checked.
//!
//! Tensor subclasses are saved pickled (`use_pickle`); they are refused
//! with a clear error rather than read.

use std::collections::HashMap;

use serde_json::Value as Json;
use tpkg_archive::PackageReader;
use tpkg_tensors::{DType, StorageRef, TensorSpec};

use crate::tensors::{LoadTensorsError, PackageTensors};

/// A `.pt2` archive's tensors could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pt2Error {
    /// A record could not be read.
    #[error(transparent)]
    Archive(#[from] tpkg_archive::ArchiveError),
    /// A tensor's bytes are out of bounds or malformed.
    #[error(transparent)]
    Tensors(#[from] LoadTensorsError),
    /// A weights config is not what `torch.export.save` writes.
    #[error("{archive}: {record}: {reason}")]
    Config {
        /// The archive.
        archive: String,
        /// The config record.
        record: String,
        /// What is wrong, naming the tensor.
        reason: String,
    },
}

/// `torch._export.serde.schema.ScalarType` → tpkg's dtype.
fn scalar_type(number: u64) -> Option<DType> {
    Some(match number {
        1 => DType::UInt8,
        2 => DType::Int8,
        3 => DType::Int16,
        4 => DType::Int32,
        5 => DType::Int64,
        6 => DType::Float16,
        7 => DType::Float32,
        8 => DType::Float64,
        9 => DType::Complex32,
        10 => DType::Complex64,
        11 => DType::Complex128,
        12 => DType::Bool,
        13 => DType::BFloat16,
        28 => DType::UInt16,
        29 => DType::Float8E4M3Fn,
        30 => DType::Float8E5M2,
        31 => DType::Float8E4M3FnUz,
        32 => DType::Float8E5M2FnUz,
        34 => DType::UInt32,
        35 => DType::UInt64,
        _ => return None,
    })
}

/// The config records of an archive: weights first, then constants.
fn config_records(reader: &PackageReader) -> Vec<(String, &'static str)> {
    let mut configs: Vec<(String, &'static str)> = reader
        .records()
        .iter()
        .filter_map(|record| {
            let name = record.name.as_str();
            if name.starts_with("data/weights/") && name.ends_with("weights_config.json") {
                Some((name.to_owned(), "data/weights/"))
            } else if name.starts_with("data/constants/") && name.ends_with("constants_config.json")
            {
                Some((name.to_owned(), "data/constants/"))
            } else {
                None
            }
        })
        .collect();
    configs.sort_by_key(|(name, dir)| (*dir != "data/weights/", name.clone()));
    configs
}

/// Every weight and constant tensor of a `.pt2` archive, by its fully
/// qualified name, viewing the archive's raw records.
pub fn pt2_tensors(reader: &PackageReader) -> Result<PackageTensors<'_>, Pt2Error> {
    let mut tensors = Vec::new();
    let mut storages: HashMap<String, String> = HashMap::new();
    let configs = config_records(reader);
    for (config_record, dir) in &configs {
        let bad = |reason: String| Pt2Error::Config {
            archive: reader.label().to_owned(),
            record: config_record.clone(),
            reason,
        };
        let text = reader.read(config_record)?;
        let config: Json =
            serde_json::from_slice(&text).map_err(|error| bad(format!("not JSON ({error})")))?;
        let Some(entries) = config["config"].as_object() else {
            return Err(bad("no \"config\" object".to_owned()));
        };
        for (fqn, payload) in entries {
            let path_name = payload["path_name"]
                .as_str()
                .ok_or_else(|| bad(format!("{fqn}: no path_name")))?;
            if payload["use_pickle"] == true {
                return Err(bad(format!(
                    "{fqn}: a pickled tensor subclass ({dir}{path_name}); tpkg reads plain tensors only"
                )));
            }
            let record = format!("{dir}{path_name}");
            if payload["tensor_meta"].is_null() {
                continue;
            }
            let spec = tensor_spec(reader, payload, &record)
                .map_err(|reason| bad(format!("{fqn}: {reason}")))?;
            storages.insert(spec.storage.key.clone(), record);
            tensors.push((fqn.clone(), spec));
        }
    }
    // The config is a JSON object (read sorted); PyTorch numbers the
    // records in the order it saved the tensors: keep that order.
    tensors.sort_by_key(|(fqn, spec)| (record_order(&spec.storage.key), fqn.clone()));
    let label = configs
        .first()
        .map_or_else(|| "data/weights".to_owned(), |(name, _)| name.clone());
    Ok(PackageTensors::from_specs(
        reader, &label, tensors, storages,
    )?)
}

/// `data/weights/weight_12` → (weights first, 12).
fn record_order(record: &str) -> (bool, u64) {
    let digits = record
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(u64::MAX);
    (!record.starts_with("data/weights/"), digits)
}

/// One tensor's spec from its `tensor_meta`, over the raw record `record`.
fn tensor_spec(reader: &PackageReader, payload: &Json, record: &str) -> Result<TensorSpec, String> {
    let meta = &payload["tensor_meta"];
    let dtype_number = meta["dtype"].as_u64().ok_or("no dtype")?;
    let dtype = scalar_type(dtype_number)
        .ok_or(format!("dtype number {dtype_number} is not one tpkg reads"))?;
    if meta["layout"].as_u64().is_some_and(|layout| layout != 7) {
        return Err(format!("layout {} is not strided", meta["layout"]));
    }
    let ints = |field: &str| -> Result<Vec<u64>, String> {
        meta[field]
            .as_array()
            .ok_or(format!("no {field}"))?
            .iter()
            .map(|dim| {
                dim["as_int"]
                    .as_u64()
                    .ok_or(format!("{field}: {dim} is symbolic or negative"))
            })
            .collect()
    };
    let shape = ints("sizes")?;
    let stride = ints("strides")?;
    if shape.len() != stride.len() {
        return Err(format!(
            "{} sizes but {} strides",
            shape.len(),
            stride.len()
        ));
    }
    let storage_offset = meta["storage_offset"]["as_int"]
        .as_u64()
        .ok_or("storage_offset is symbolic or negative")?;
    let bytes = reader
        .record(record)
        .map_err(|error| error.to_string())?
        .size;
    let element = dtype.element_size() as u64;
    if bytes % element != 0 {
        return Err(format!(
            "{record} holds {bytes} bytes, not a multiple of {}'s {element}",
            dtype.name()
        ));
    }
    Ok(TensorSpec {
        storage: StorageRef {
            key: record.to_owned(),
            dtype,
            location: meta["device"]["type"].as_str().unwrap_or("cpu").to_owned(),
            numel: bytes / element,
            view: None,
        },
        dtype,
        storage_offset,
        shape,
        stride,
        requires_grad: meta["requires_grad"] == true,
        parameter: payload["is_param"] == true,
    })
}
