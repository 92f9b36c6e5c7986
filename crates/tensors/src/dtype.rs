//! PyTorch's element types and the storage classes pickles name them by.

use std::fmt;

/// A tensor element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `torch.float32`.
    Float32,
    /// `torch.float64`.
    Float64,
    /// `torch.float16`.
    Float16,
    /// `torch.bfloat16`.
    BFloat16,
    /// `torch.uint8`.
    UInt8,
    /// `torch.int8`.
    Int8,
    /// `torch.int16`.
    Int16,
    /// `torch.int32`.
    Int32,
    /// `torch.int64`.
    Int64,
    /// `torch.uint16`.
    UInt16,
    /// `torch.uint32`.
    UInt32,
    /// `torch.uint64`.
    UInt64,
    /// `torch.bool` (one byte per element).
    Bool,
    /// `torch.complex32` (two float16).
    Complex32,
    /// `torch.complex64` (two float32).
    Complex64,
    /// `torch.complex128` (two float64).
    Complex128,
    /// `torch.float8_e4m3fn`.
    Float8E4M3Fn,
    /// `torch.float8_e5m2`.
    Float8E5M2,
    /// `torch.float8_e4m3fnuz`.
    Float8E4M3FnUz,
    /// `torch.float8_e5m2fnuz`.
    Float8E5M2FnUz,
}

impl DType {
    /// Bytes per element.
    ///
    /// ```
    /// assert_eq!(tpkg_tensors::DType::Complex64.element_size(), 8);
    /// ```
    pub fn element_size(self) -> usize {
        match self {
            DType::UInt8
            | DType::Int8
            | DType::Bool
            | DType::Float8E4M3Fn
            | DType::Float8E5M2
            | DType::Float8E4M3FnUz
            | DType::Float8E5M2FnUz => 1,
            DType::Float16 | DType::BFloat16 | DType::Int16 | DType::UInt16 => 2,
            DType::Float32 | DType::Int32 | DType::UInt32 | DType::Complex32 => 4,
            DType::Float64 | DType::Int64 | DType::UInt64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
        }
    }

    /// PyTorch's name without `torch.` (`float32`, `bfloat16`, ...).
    ///
    /// ```
    /// assert_eq!(tpkg_tensors::DType::BFloat16.name(), "bfloat16");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::UInt8 => "uint8",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Bool => "bool",
            DType::Complex32 => "complex32",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
            DType::Float8E4M3Fn => "float8_e4m3fn",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Float8E4M3FnUz => "float8_e4m3fnuz",
            DType::Float8E5M2FnUz => "float8_e5m2fnuz",
        }
    }

    /// The dtype of a `torch.<name>` global, aliases included
    /// (`float`, `half`, `long`, `cfloat`, ...).
    ///
    /// ```
    /// use tpkg_tensors::DType;
    /// assert_eq!(DType::from_torch_name("half"), Some(DType::Float16));
    /// assert_eq!(DType::from_torch_name("qint8"), None);
    /// ```
    pub fn from_torch_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "float" => DType::Float32,
            "float64" | "double" => DType::Float64,
            "float16" | "half" => DType::Float16,
            "bfloat16" => DType::BFloat16,
            "uint8" => DType::UInt8,
            "int8" => DType::Int8,
            "int16" | "short" => DType::Int16,
            "int32" | "int" => DType::Int32,
            "int64" | "long" => DType::Int64,
            "uint16" => DType::UInt16,
            "uint32" => DType::UInt32,
            "uint64" => DType::UInt64,
            "bool" => DType::Bool,
            "complex32" | "chalf" => DType::Complex32,
            "complex64" | "cfloat" => DType::Complex64,
            "complex128" | "cdouble" => DType::Complex128,
            "float8_e4m3fn" => DType::Float8E4M3Fn,
            "float8_e5m2" => DType::Float8E5M2,
            "float8_e4m3fnuz" => DType::Float8E4M3FnUz,
            "float8_e5m2fnuz" => DType::Float8E5M2FnUz,
            _ => return None,
        })
    }

    /// The dtype of a legacy storage class (`torch.FloatStorage`, ...);
    /// `UntypedStorage` is bytes (`uint8`). `None` for quantized storages
    /// and anything else.
    ///
    /// ```
    /// use tpkg_tensors::DType;
    /// assert_eq!(DType::from_storage_type("ComplexFloatStorage"), Some(DType::Complex64));
    /// ```
    pub fn from_storage_type(name: &str) -> Option<DType> {
        Some(match name {
            "DoubleStorage" => DType::Float64,
            "FloatStorage" => DType::Float32,
            "HalfStorage" => DType::Float16,
            "LongStorage" => DType::Int64,
            "IntStorage" => DType::Int32,
            "ShortStorage" => DType::Int16,
            "CharStorage" => DType::Int8,
            "ByteStorage" | "UntypedStorage" => DType::UInt8,
            "BoolStorage" => DType::Bool,
            "BFloat16Storage" => DType::BFloat16,
            "ComplexDoubleStorage" => DType::Complex128,
            "ComplexFloatStorage" => DType::Complex64,
            _ => return None,
        })
    }

    /// The legacy storage class PyTorch pickles for this dtype, or
    /// `UntypedStorage` for dtypes that have none (then the rebuild call
    /// carries the dtype: `_rebuild_tensor_v3`).
    ///
    /// ```
    /// use tpkg_tensors::DType;
    /// assert_eq!(DType::Int64.storage_type(), "LongStorage");
    /// assert_eq!(DType::Float8E5M2.storage_type(), "UntypedStorage");
    /// ```
    pub fn storage_type(self) -> &'static str {
        match self {
            DType::Float64 => "DoubleStorage",
            DType::Float32 => "FloatStorage",
            DType::Float16 => "HalfStorage",
            DType::Int64 => "LongStorage",
            DType::Int32 => "IntStorage",
            DType::Int16 => "ShortStorage",
            DType::Int8 => "CharStorage",
            DType::UInt8 => "ByteStorage",
            DType::Bool => "BoolStorage",
            DType::BFloat16 => "BFloat16Storage",
            DType::Complex128 => "ComplexDoubleStorage",
            DType::Complex64 => "ComplexFloatStorage",
            _ => "UntypedStorage",
        }
    }

    /// Every dtype.
    pub const ALL: [DType; 20] = [
        DType::Float32,
        DType::Float64,
        DType::Float16,
        DType::BFloat16,
        DType::UInt8,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Bool,
        DType::Complex32,
        DType::Complex64,
        DType::Complex128,
        DType::Float8E4M3Fn,
        DType::Float8E5M2,
        DType::Float8E4M3FnUz,
        DType::Float8E5M2FnUz,
    ];
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_storage_types_agree() {
        for dtype in DType::ALL {
            assert_eq!(DType::from_torch_name(dtype.name()), Some(dtype));
            let storage = dtype.storage_type();
            if storage != "UntypedStorage" {
                assert_eq!(DType::from_storage_type(storage), Some(dtype));
            }
        }
    }
}
