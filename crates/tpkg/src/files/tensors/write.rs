//! Writing a pickle with its tensor storages, as `save_pickle` does.

use tpkg_archive::ArchiveError;
use tpkg_pickle::ValueGraph;
use tpkg_tensors::StorageRef;

use super::storage_record;

/// Writing a pickle with its tensor storages failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteTensorsError {
    /// The storages and their bytes do not pair up.
    #[error("{storages} storages but {buffers} byte buffers")]
    Mismatch {
        /// Storages registered.
        storages: usize,
        /// Buffers given.
        buffers: usize,
    },
    /// Encoding the pickle failed.
    #[error(transparent)]
    Encode(#[from] tpkg_pickle::EncodeError),
    /// Writing a record failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// Writes the storages a [`TensorEncoder`](super::TensorEncoder) registered (`bytes[i]` for
/// `storages[i]`, each as `.data/<key>.storage`, once) and `graph` as a
/// protocol-3 pickle at `record`, as `PackageExporter.save_pickle` does.
pub fn write_tensor_pickle<D: tpkg_archive::Destination>(
    writer: &mut tpkg_archive::PackageWriter<D>,
    record: &str,
    graph: &ValueGraph,
    storages: &[StorageRef],
    bytes: &[impl AsRef<[u8]>],
) -> Result<(), WriteTensorsError> {
    if storages.len() != bytes.len() {
        return Err(WriteTensorsError::Mismatch {
            storages: storages.len(),
            buffers: bytes.len(),
        });
    }
    for (storage, data) in storages.iter().zip(bytes) {
        writer.write_record(&storage_record(&storage.key), data.as_ref())?;
    }
    writer.write_record(record, &tpkg_pickle::encode(graph, 3)?)?;
    Ok(())
}
