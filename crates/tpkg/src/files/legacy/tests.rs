use tpkg_pickle::DecodeErrorKind;

use super::*;

mod tar;

// A small pickle writer (protocol 2, no memo) for hand-made streams.

fn text(s: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

fn int(n: i64) -> Vec<u8> {
    let mut out = vec![b'\x8a', 8];
    out.extend_from_slice(&n.to_le_bytes());
    out
}

fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'('];
    for item in items {
        out.extend_from_slice(item);
    }
    out.push(b't');
    out
}

fn global(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

fn pickle(body: &[u8]) -> Vec<u8> {
    [b"\x80\x02".as_slice(), body, b"."].concat()
}

fn dict(items: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"}(".to_vec();
    for (key, value) in items {
        out.extend_from_slice(&text(key));
        out.extend_from_slice(value);
    }
    out.push(b'u');
    out
}

/// `('storage', torch.<storage_type>, key, 'cpu', numel, view)`, as a
/// persistent id.
fn pid(storage_type: &str, key: &str, numel: i64, view: Option<(&str, i64, i64)>) -> Vec<u8> {
    let view = match view {
        None => b"N".to_vec(),
        Some((key, offset, numel)) => tuple(&[text(key), int(offset), int(numel)]),
    };
    let mut out = tuple(&[
        text("storage"),
        global("torch", storage_type),
        text(key),
        text("cpu"),
        int(numel),
        view,
    ]);
    out.push(b'Q');
    out
}

fn ints(values: &[i64]) -> Vec<u8> {
    tuple(&values.iter().map(|v| int(*v)).collect::<Vec<_>>())
}

/// `_rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict())`.
fn tensor(pid: Vec<u8>, offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let mut out = global("torch._utils", "_rebuild_tensor_v2");
    let hooks = [global("collections", "OrderedDict"), b")R".to_vec()].concat();
    out.extend_from_slice(&tuple(&[
        pid,
        int(offset),
        ints(size),
        ints(stride),
        b"\x89".to_vec(),
        hooks,
    ]));
    out.push(b'R');
    out
}

const MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
const VERSION: &[u8] = b"\x80\x02M\xe9\x03.";

fn sys_info(little_endian: bool) -> Vec<u8> {
    let flag = if little_endian { b"\x88" } else { b"\x89" };
    pickle(&dict(&[
        ("protocol_version", int(1001)),
        ("little_endian", flag.to_vec()),
        (
            "type_sizes",
            dict(&[("short", int(2)), ("int", int(4)), ("long", int(4))]),
        ),
    ]))
}

fn keys(keys: &[&str]) -> Vec<u8> {
    let mut body = b"](".to_vec();
    for key in keys {
        body.extend_from_slice(&text(key));
    }
    body.push(b'e');
    pickle(&body)
}

fn stream(object: &[u8], key_list: &[&str], storages: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = [MAGIC, VERSION, &sys_info(true), object, &keys(key_list)].concat();
    for (count, bytes) in storages {
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// {"a": 2x3 float32 on "1", "t": its transpose, "b": int64 [2] on "2"}.
fn good() -> Vec<u8> {
    let object = pickle(&dict(&[
        (
            "a",
            tensor(pid("FloatStorage", "1", 6, None), 0, &[2, 3], &[3, 1]),
        ),
        (
            "t",
            tensor(pid("FloatStorage", "1", 6, None), 0, &[3, 2], &[1, 3]),
        ),
        ("b", tensor(pid("LongStorage", "2", 2, None), 0, &[2], &[1])),
    ]));
    let longs: Vec<u8> = [7i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    stream(
        &object,
        &["1", "2"],
        &[(6, floats(&[0., 1., 2., 3., 4., 5.])), (2, longs)],
    )
}

fn open(bytes: Vec<u8>) -> Result<LegacyFile, LegacyError> {
    LegacyFile::from_bytes(bytes)
}

#[test]
fn a_hand_made_stream_reads() {
    let file = open(good()).unwrap();
    let roles: Vec<_> = file.pickles().iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            PickleRole::Magic,
            PickleRole::ProtocolVersion,
            PickleRole::SysInfo,
            PickleRole::Object,
            PickleRole::StorageKeys
        ]
    );
    assert_eq!(file.pickles()[0].range, 0..15);
    assert_eq!(file.pickles()[1].range, 15..21);
    assert_eq!(file.sys_info().little_endian, Some(true));
    assert_eq!(file.sys_info().protocol_version, Some(1001));
    assert_eq!(
        file.sys_info().type_sizes,
        [("short".into(), 2), ("int".into(), 4), ("long".into(), 4)]
    );
    let keys: Vec<_> = file.storages().iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["1", "2"]);
    let first = &file.storages()[0];
    assert_eq!(first.dtype, DType::Float32);
    assert_eq!(first.data.start, first.header + 8);
    assert_eq!(first.data.end - first.data.start, 24);
    assert_eq!(file.storages()[1].header, first.data.end);
    assert!(file.trailing().is_empty());
    let tensors = file.tensors().unwrap();
    let paths: Vec<_> = tensors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["a", "t", "b"]);
    assert_eq!(
        &tensors[1].1.contiguous_bytes()[..],
        floats(&[0., 3., 1., 4., 2., 5.])
    );
    assert_eq!(tensors[2].1.dtype(), DType::Int64);
    assert!(looks_legacy(&good()));
}

#[test]
fn trailing_bytes_are_reported_not_read() {
    let mut bytes = good();
    let len = bytes.len() as u64;
    bytes.extend_from_slice(b"hidden");
    let file = open(bytes).unwrap();
    assert_eq!(file.trailing(), len..len + 6);
}

#[test]
fn truncation_anywhere_is_a_typed_error() {
    let bytes = good();
    let file = open(bytes.clone()).unwrap();
    let spans = file.pickles().to_vec();
    let storages = file.storages().to_vec();
    // Inside every pickle, then inside each count and each storage's data.
    let mut cuts: Vec<(u64, &str)> = spans
        .iter()
        .map(|span| ((span.range.start + span.range.end) / 2, "pickle"))
        .collect();
    cuts.push((spans[1].range.start, "pickle"));
    for storage in &storages {
        cuts.push((storage.header + 3, "count"));
        cuts.push((storage.data.start + 5, "data"));
    }
    cuts.push((0, "pickle"));
    for (cut, what) in cuts {
        let error = open(bytes[..cut as usize].to_vec()).unwrap_err();
        let ok = match (what, &error) {
            ("pickle", LegacyError::Pickle { source, .. }) => matches!(
                source.kind(),
                DecodeErrorKind::MissingStop | DecodeErrorKind::Truncated { .. }
            ),
            ("count", LegacyError::Truncated { needed: 8, .. }) => true,
            ("data", LegacyError::Truncated { what, .. }) => what.contains("data"),
            _ => false,
        };
        assert!(ok, "cut at {cut} ({what}): {error:?}");
        // Messages name the byte.
        assert!(error.to_string().starts_with("byte "), "{error}");
    }
}

#[test]
fn a_storage_count_past_the_end_of_the_file() {
    let object = pickle(&dict(&[(
        "a",
        tensor(pid("FloatStorage", "1", 1 << 40, None), 0, &[2], &[1]),
    )]));
    let bytes = stream(&object, &["1"], &[(1 << 40, floats(&[1.0, 2.0]))]);
    let header = (bytes.len() - 16) as u64;
    match open(bytes).unwrap_err() {
        LegacyError::Truncated {
            offset,
            needed,
            available,
            ..
        } => {
            assert_eq!(offset, header + 8);
            assert_eq!(needed, 4 << 40);
            assert_eq!(available, 8);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_count_that_overflows_or_disagrees_with_the_pickle() {
    let object = pickle(&dict(&[(
        "a",
        tensor(pid("DoubleStorage", "1", 2, None), 0, &[2], &[1]),
    )]));
    let error = open(stream(&object, &["1"], &[(u64::MAX / 4, vec![0; 16])])).unwrap_err();
    assert!(
        matches!(
            error,
            LegacyError::SizeOverflow {
                element_size: 8,
                ..
            }
        ),
        "{error:?}"
    );
    let error = open(stream(&object, &["1"], &[(3, vec![0; 24])])).unwrap_err();
    assert!(
        matches!(
            error,
            LegacyError::StorageSize {
                count: 3,
                numel: Some(2),
                ..
            }
        ),
        "{error:?}"
    );
    let error = open(stream(&object, &["1"], &[(u64::MAX, vec![])])).unwrap_err();
    assert!(
        matches!(error, LegacyError::SizeOverflow { .. }),
        "{error:?}"
    );
    let object = pickle(&dict(&[(
        "a",
        tensor(pid("ByteStorage", "1", 2, None), 0, &[2], &[1]),
    )]));
    let error = open(stream(&object, &["1"], &[(u64::MAX, vec![])])).unwrap_err();
    assert!(
        matches!(error, LegacyError::StorageSize { count: -1, .. }),
        "{error:?}"
    );
}

#[test]
fn wrong_magic_version_or_byte_order() {
    let bytes = good();
    let mut wrong = bytes.clone();
    wrong[4] ^= 1;
    let error = open(wrong.clone()).unwrap_err();
    assert!(matches!(error, LegacyError::BadMagic { .. }), "{error:?}");
    assert!(!looks_legacy(&wrong));
    assert!(matches!(
        open(b"PK\x03\x04".to_vec()).unwrap_err(),
        LegacyError::Pickle {
            role: PickleRole::Magic,
            offset: 0,
            ..
        }
    ));
    assert!(matches!(
        open(Vec::new()).unwrap_err(),
        LegacyError::Pickle { .. }
    ));
    let mut version = bytes.clone();
    version[18] = 0xea; // 1002
    match open(version).unwrap_err() {
        LegacyError::ProtocolVersion { offset, found } => {
            assert_eq!((offset, found.as_str()), (15, "1002"));
        }
        other => panic!("{other:?}"),
    }
    let big = [MAGIC, VERSION, &sys_info(false)].concat();
    assert!(matches!(
        open(big).unwrap_err(),
        LegacyError::BigEndian { offset: 21 }
    ));
}

#[test]
fn magic_and_version_at_every_protocol() {
    // pickle.dumps(MAGIC_NUMBER / 1001, protocol=0, 1, 4)
    let heads: [&[u8]; 3] = [
        b"L119547037146038801333356L\n.I1001\n.",
        b"L119547037146038801333356L\n.M\xe9\x03.",
        b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00M\xe9\x03.",
    ];
    let rest = &good()[21..];
    for head in heads {
        assert!(looks_legacy(head));
        let file = open([head, rest].concat()).unwrap();
        assert_eq!(file.tensors().unwrap().len(), 3);
    }
}

#[test]
fn keys_missing_unknown_or_twice() {
    let object = pickle(&dict(&[
        (
            "a",
            tensor(pid("FloatStorage", "1", 1, None), 0, &[1], &[1]),
        ),
        (
            "b",
            tensor(pid("FloatStorage", "2", 1, None), 0, &[1], &[1]),
        ),
    ]));
    let one = (1, floats(&[1.0]));
    let error = open(stream(&object, &["1"], std::slice::from_ref(&one))).unwrap_err();
    match &error {
        LegacyError::MissingStorage { key, offset } => {
            assert_eq!(key, "2");
            assert!(*offset > 45, "{offset}");
        }
        other => panic!("{other:?}"),
    }
    let error = open(stream(
        &object,
        &["1", "2", "3"],
        &[one.clone(), one.clone(), one.clone()],
    ))
    .unwrap_err();
    assert!(
        matches!(&error, LegacyError::UnknownStorage { key, .. } if key == "3"),
        "{error:?}"
    );
    let error = open(stream(
        &object,
        &["1", "1", "2"],
        &[one.clone(), one.clone(), one],
    ))
    .unwrap_err();
    assert!(
        matches!(&error, LegacyError::DuplicateStorage { key, .. } if key == "1"),
        "{error:?}"
    );
    let not_strings = [
        MAGIC,
        VERSION,
        &sys_info(true),
        &object,
        &pickle(&ints(&[1, 2])),
    ]
    .concat();
    assert!(matches!(
        open(not_strings).unwrap_err(),
        LegacyError::StorageKeys { .. }
    ));
}

#[test]
fn persistent_ids_torch_load_refuses() {
    let one = || vec![(1, floats(&[1.0]))];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Five fields: the zip layout, not the legacy one.
        (
            {
                let mut pid = tuple(&[
                    text("storage"),
                    global("torch", "FloatStorage"),
                    text("1"),
                    text("cpu"),
                    int(1),
                ]);
                pid.push(b'Q');
                tensor(pid, 0, &[1], &[1])
            },
            "fields",
        ),
        (
            [tuple(&[text("reduce_package"), int(1)]), b"Q".to_vec()].concat(),
            "Unknown saved id type",
        ),
        (
            tensor(pid("UntypedStorage", "1", 4, None), 0, &[4], &[1]),
            "UntypedStorage",
        ),
        (
            tensor(pid("QInt8Storage", "1", 1, None), 0, &[1], &[1]),
            "QInt8Storage",
        ),
        (
            tuple(&[
                tensor(pid("FloatStorage", "1", 1, None), 0, &[1], &[1]),
                tensor(pid("LongStorage", "1", 1, None), 0, &[1], &[1]),
            ]),
            "declared as",
        ),
        (b"K\x05Q".to_vec(), "not a tuple"),
    ];
    for (object, message) in cases {
        let error = open(stream(&pickle(&object), &["1"], &one())).unwrap_err();
        let text = format!("{error} {:?}", std::error::Error::source(&error));
        assert!(text.contains(message), "{message}: {text}");
        assert!(text.starts_with("byte "), "{text}");
    }
    // A persistent id in a pickle read without persistent_load.
    let object = pickle(b"N");
    let keys_with_pid = pickle(&[b"](".as_slice(), &text("1"), b"Qe"].concat());
    let bytes = [MAGIC, VERSION, &sys_info(true), &object, &keys_with_pid].concat();
    assert!(matches!(
        open(bytes).unwrap_err(),
        LegacyError::UnexpectedPersistentId {
            role: PickleRole::StorageKeys,
            ..
        }
    ));
}

#[test]
fn storage_views_are_slices_of_their_root() {
    // Root "1" of 6 floats; view "v" = elements 2..5; a tensor of 2 at
    // offset 1 in the view sees root elements 3 and 4.
    let object = pickle(&dict(&[
        (
            "v",
            tensor(
                pid("FloatStorage", "1", 6, Some(("v", 2, 3))),
                1,
                &[2],
                &[1],
            ),
        ),
        (
            "root",
            tensor(pid("FloatStorage", "1", 6, None), 0, &[6], &[1]),
        ),
    ]));
    let data = (6, floats(&[0., 1., 2., 3., 4., 5.]));
    let file = open(stream(&object, &["1"], std::slice::from_ref(&data))).unwrap();
    let tensors = file.tensors().unwrap();
    let view = &tensors[0].1;
    assert_eq!(view.storage_offset(), 1);
    assert_eq!(view.storage_bytes().len(), 12);
    assert_eq!(&view.contiguous_bytes()[..], floats(&[3., 4.]));
    assert_eq!(tensors[1].1.storage_bytes().len(), 24);

    // A tensor reaching past its view, a view past its root, a view
    // key that is also a root key, a view declared twice differently.
    let bad: Vec<(Vec<u8>, bool)> = vec![
        (
            tensor(
                pid("FloatStorage", "1", 6, Some(("v", 2, 3))),
                2,
                &[2],
                &[1],
            ),
            true,
        ),
        (
            tensor(
                pid("FloatStorage", "1", 6, Some(("v", 4, 3))),
                0,
                &[1],
                &[1],
            ),
            true,
        ),
        (
            tensor(
                pid("FloatStorage", "1", 6, Some(("1", 0, 3))),
                0,
                &[1],
                &[1],
            ),
            false,
        ),
        (
            tuple(&[
                tensor(
                    pid("FloatStorage", "1", 6, Some(("v", 0, 3))),
                    0,
                    &[1],
                    &[1],
                ),
                tensor(
                    pid("FloatStorage", "1", 6, Some(("v", 1, 3))),
                    0,
                    &[1],
                    &[1],
                ),
            ]),
            false,
        ),
    ];
    for (object, at_tensors) in bad {
        let result = open(stream(
            &pickle(&object),
            &["1"],
            std::slice::from_ref(&data),
        ));
        let error = if at_tensors {
            result.unwrap().tensors().unwrap_err()
        } else {
            result.unwrap_err()
        };
        assert!(
            matches!(
                error,
                LegacyError::Tensor { .. } | LegacyError::PersistentId { .. }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn module_classes_become_globals() {
    // An object whose class is a ('module', class, file, source)
    // persistent id: NEWOBJ with the id as its class.
    let class = [
        tuple(&[
            text("module"),
            global("torch.nn.modules.linear", "Identity"),
            b"N".to_vec(),
            b"N".to_vec(),
        ]),
        b"Q".to_vec(),
    ]
    .concat();
    let object = pickle(&[class, b")\x81".to_vec()].concat());
    let file = open(stream(&object, &[], &[])).unwrap();
    let graph = file.graph();
    let Value::Object { class, .. } = graph.get(graph.root()) else {
        panic!("{:?}", graph.get(graph.root()))
    };
    assert!(matches!(
        graph.get(*class),
        Value::Global { module, name } if module == "torch.nn.modules.linear" && name == "Identity"
    ));
}

/// 3,000 seeded damages of `bytes` (a byte set, sometimes a cut):
/// each opens or fails, and an opened file's tensors read or fail.
fn damage_never_panics(bytes: &[u8], seed: u64) {
    let mut state = seed;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut damaged = bytes.to_vec();
        let at = (state % damaged.len() as u64) as usize;
        damaged[at] = (state >> 32) as u8;
        if state & 1 == 0 {
            damaged.truncate((state >> 40) as usize % bytes.len());
        }
        if let Ok(file) = open(damaged) {
            let _ = file.tensors();
        }
    }
}

#[test]
fn random_damage_never_panics() {
    damage_never_panics(&good(), 0x9e37_79b9_7f4a_7c15);
}
