//! Views are checked against their storage before any byte is read.

use tpkg_tensors::{DType, StorageRef, TensorError, TensorSpec, TensorView};

fn spec(dtype: DType, numel: u64, shape: &[u64], stride: &[u64], offset: u64) -> TensorSpec {
    TensorSpec {
        storage: StorageRef {
            key: "0".to_owned(),
            dtype,
            location: "cpu".to_owned(),
            numel,
            view: None,
        },
        dtype,
        storage_offset: offset,
        shape: shape.to_vec(),
        stride: stride.to_vec(),
        requires_grad: false,
        parameter: false,
    }
}

#[test]
fn bounds_table() {
    let storage = vec![0u8; 24 * 4];
    type Check = fn(&TensorError) -> bool;
    let out_of_bounds: Check = |e| matches!(e, TensorError::OutOfBounds { .. });
    let malformed: Check = |e| matches!(e, TensorError::Malformed { .. });
    let cases: Vec<(&str, TensorSpec, Option<Check>)> = vec![
        ("whole", spec(DType::Float32, 24, &[4, 6], &[6, 1], 0), None),
        (
            "last element",
            spec(DType::Float32, 24, &[1], &[1], 23),
            None,
        ),
        (
            "one past the end",
            spec(DType::Float32, 24, &[1], &[1], 24),
            Some(out_of_bounds),
        ),
        (
            "stride too long",
            spec(DType::Float32, 24, &[4, 6], &[7, 1], 0),
            Some(out_of_bounds),
        ),
        (
            "empty anywhere",
            spec(DType::Float32, 24, &[0, 1000], &[1000, 1], 1_000_000),
            None,
        ),
        (
            "expanded",
            spec(DType::Float32, 24, &[1000, 24], &[0, 1], 0),
            None,
        ),
        (
            "overflowing",
            spec(DType::Float32, 24, &[u64::MAX, 2], &[u64::MAX, 1], 0),
            Some(out_of_bounds),
        ),
        (
            "rank mismatch",
            spec(DType::Float32, 24, &[4, 6], &[1], 0),
            Some(malformed),
        ),
    ];
    for (name, spec, expected) in cases {
        match (TensorView::new(spec, name, &storage), expected) {
            (Ok(_), None) => {}
            (Err(error), Some(check)) => assert!(check(&error), "{name}: {error}"),
            (result, _) => panic!("{name}: unexpected {result:?}"),
        }
    }
}

#[test]
fn storage_length_must_fit_dtype_and_declared_size() {
    let odd = vec![0u8; 10];
    let error = TensorView::new(spec(DType::Float32, 2, &[2], &[1], 0), "t", &odd).unwrap_err();
    assert!(matches!(error, TensorError::StorageSize { .. }), "{error}");
    let short = vec![0u8; 8];
    let error = TensorView::new(spec(DType::Float32, 3, &[2], &[1], 0), "t", &short).unwrap_err();
    assert!(error.to_string().contains("declares 3 elements"), "{error}");
}

#[test]
fn contiguous_bytes_gather_in_row_major_order() {
    let storage: Vec<u8> = (0u8..12).collect();
    // A uint8 [3, 2] view with strides [1, 3] over 6 elements starting at 6.
    let view = TensorView::new(spec(DType::UInt8, 12, &[3, 2], &[1, 3], 6), "t", &storage).unwrap();
    assert!(!view.is_contiguous());
    assert_eq!(&view.contiguous_bytes()[..], &[6, 9, 7, 10, 8, 11]);
    let whole =
        TensorView::new(spec(DType::UInt8, 12, &[2, 6], &[6, 1], 0), "t", &storage).unwrap();
    assert!(whole.is_contiguous());
    assert!(matches!(
        whole.contiguous_bytes(),
        std::borrow::Cow::Borrowed(_)
    ));
}
