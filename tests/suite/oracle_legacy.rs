//! Legacy `torch.save` files read by tpkg's `legacy` module: streams
//! (`_use_new_zipfile_serialization=False`) written live by the pinned
//! PyTorch, and tars of the pre-0.4 form written the way torch 0.1-0.3 did
//! (`old_torch_save` in the oracle script) and loaded by the pinned PyTorch:
//! every tensor `torch.load` finds (path, dtype, shape, stride, offset,
//! flags, SHA-256 of the elements), the value image, which tensors share a
//! storage, where each pickle and each storage lies in the file; and the
//! files `torch.load` refuses, tpkg refuses too.

use serde_json::Value;
use tpkg::legacy::{
    LegacyError, LegacyFile, LegacyForm, PickleRole, looks_legacy, looks_legacy_tar,
};
use tpkg::tensors::TensorSummary;
use tpkg_tests::oracle;

/// Paths of the tensors that share one storage (a legacy storage view is a
/// storage of its own), in order of first appearance, groups of two or more.
fn shared_storages(file: &LegacyFile) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (path, view) in file.tensors().unwrap() {
        let storage = &view.spec().storage;
        let identity = match &storage.view {
            Some(v) => format!("{}/{}", storage.key, v.key),
            None => storage.key.clone(),
        };
        match groups.iter_mut().find(|(id, _)| *id == identity) {
            Some((_, paths)) => paths.push(path),
            None => groups.push((identity, vec![path])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(_, paths)| Value::from(paths))
        .collect()
}

#[test]
fn legacy_files_pytorch_writes_read_as_torch_load_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let answers = oracle::run_json("legacy_oracle.py", &[out]).unwrap();
    let answers = answers.as_object().unwrap();
    let (mut read, mut refused, mut tensors, mut tar) = (0, 0, 0, 0);
    for (name, answer) in answers {
        let path = dir.path().join(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes.len() as u64,
            answer["length"].as_u64().unwrap(),
            "{name}"
        );
        if answer["loaded"] == false {
            // torch.load fails on it: so must tpkg (at open, or at the
            // tensors, never with a panic).
            let result = LegacyFile::open(&path).and_then(|file| file.tensors().map(drop));
            let error = result.expect_err(name);
            eprintln!("{name}: torch.load: {}; tpkg: {error}", answer["error"]);
            // Why: dtypes torch.save writes as UntypedStorage (uint16-64,
            // float8, complex32) are not read as bytes; protocol 0 writes
            // persistent ids as text, which torch.load refuses.
            let expected = if name.starts_with("untyped_") {
                "UntypedStorage"
            } else {
                "is not a tuple"
            };
            assert!(
                matches!(&error, LegacyError::PersistentId { reason, .. } if reason.contains(expected)),
                "{name}: {error:?}"
            );
            refused += 1;
            continue;
        }
        assert_eq!(looks_legacy(&bytes), answer["form"] == "stream", "{name}");
        let file = LegacyFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            LegacyFile::from_bytes(bytes).unwrap().pickles(),
            file.pickles(),
            "{name}"
        );

        let spans: Vec<Value> = file
            .pickles()
            .iter()
            .map(|span| Value::from(vec![span.range.start, span.range.end]))
            .collect();
        assert_eq!(
            Value::from(spans),
            answer["pickles"],
            "{name}: pickle spans"
        );
        let roles: Vec<PickleRole> = file.pickles().iter().map(|span| span.role).collect();
        assert_eq!(file.sys_info().little_endian, Some(true), "{name}");
        if answer["form"] == "tar" {
            assert_eq!(file.form(), LegacyForm::Tar, "{name}");
            assert!(looks_legacy_tar(&std::fs::read(&path).unwrap()), "{name}");
            let members: Vec<Value> = file
                .tar_members()
                .iter()
                .map(|m| serde_json::json!([m.name, m.data.start, m.data.end - m.data.start]))
                .collect();
            assert_eq!(
                Value::from(members),
                answer["members"],
                "{name}: tar members"
            );
            assert_eq!(file.sys_info().protocol_version, Some(1000), "{name}");
            assert_eq!(roles.first(), Some(&PickleRole::SysInfo), "{name}");
            assert!(roles.contains(&PickleRole::StorageViews), "{name}");
            tar += 1;
        } else {
            assert_eq!(file.form(), LegacyForm::Stream, "{name}");
            assert!(file.tar_members().is_empty(), "{name}");
            assert_eq!(
                roles,
                [
                    PickleRole::Magic,
                    PickleRole::ProtocolVersion,
                    PickleRole::SysInfo,
                    PickleRole::Object,
                    PickleRole::StorageKeys
                ],
                "{name}"
            );
            assert_eq!(file.sys_info().protocol_version, Some(1001), "{name}");
        }

        let storages: Vec<Value> = file
            .storages()
            .iter()
            .map(|s| serde_json::json!([s.key, s.numel, s.data.start, s.data.end]))
            .collect();
        assert_eq!(
            Value::from(storages),
            answer["storages"],
            "{name}: storages"
        );
        assert!(file.trailing().is_empty(), "{name}");

        let image = tpkg::show::image(file.graph()).unwrap();
        assert_eq!(image, answer["value"], "{name}: value image");

        let ours: Vec<Value> = file
            .tensors()
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .iter()
            .map(|(path, view)| serde_json::to_value(TensorSummary::of(path, view)).unwrap())
            .collect();
        let theirs = answer["tensors"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}: tensor count");
        for (ours, theirs) in ours.iter().zip(theirs) {
            assert_eq!(ours, theirs, "{name}");
        }
        assert_eq!(
            shared_storages(&file),
            answer["shared_storages"],
            "{name}: shared storages"
        );
        tensors += ours.len();
        read += 1;
    }
    // Streams: every dtype, the views, nested values, a whole module,
    // protocols 1, 3, 4, 5; protocol 0 and the six untyped dtypes refused by
    // both. Tars: a state dict with views, nested values, a whole module.
    assert_eq!((read, refused, tar), (14, 7, 3), "{answers:?}");
    assert!(tensors >= 70, "{tensors}");
}

/// Fixes a tar header block's checksum after an edit (so the edit reaches
/// the fields behind it instead of failing the checksum).
fn fix_checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

/// tpkg lists the members of damaged tars as Python's `tarfile` does (or
/// fails where it fails): the legacy tar form is read through `tarfile`, so
/// a different listing would be a parser differential.
#[test]
fn tar_listing_agrees_with_python_tarfile_on_damaged_tars() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    oracle::run_json("legacy_oracle.py", &[out]).unwrap();
    let mut paths = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for source in ["tar_state_dict.pt", "tar_nested.pt"] {
        let bytes = std::fs::read(dir.path().join(source)).unwrap();
        let members = tpkg::legacy::list_tar(&bytes).unwrap().unwrap();
        // Header blocks: each member's pax header, its pax data, its own header.
        let mut headers = Vec::new();
        for member in &members {
            headers.push((member.header as usize, true));
            headers.push((member.header as usize + 512, false));
            headers.push((member.data.start as usize - 512, true));
        }
        for case in 0..200 {
            let mut damaged = bytes.clone();
            let (block, is_header) = headers[next() as usize % headers.len()];
            match case % 4 {
                // A byte anywhere in the block, the checksum fixed.
                0 | 1 => {
                    let at = block + next() as usize % 512;
                    damaged[at] = next() as u8;
                    if is_header && case % 4 == 0 {
                        fix_checksum(&mut damaged[block..block + 512]);
                    }
                }
                // A digit of the size field or of a pax record.
                2 => {
                    let at = if is_header {
                        block + 124 + next() as usize % 12
                    } else {
                        block + next() as usize % 40
                    };
                    damaged[at] = b"0123456789 x\0\x80"[next() as usize % 14];
                    if is_header {
                        fix_checksum(&mut damaged[block..block + 512]);
                    }
                }
                // Truncation.
                _ => damaged.truncate(next() as usize % bytes.len()),
            }
            let path = dir.path().join(format!("{source}.{case}"));
            std::fs::write(&path, &damaged).unwrap();
            paths.push((path.to_str().unwrap().to_owned(), damaged));
        }
    }
    let request = Value::from(paths.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
    let answers = oracle::run_json_stdin("legacy_oracle.py", &["list-tars"], &request).unwrap();
    let (mut listed, mut failed) = (0, 0);
    for (path, bytes) in &paths {
        let theirs = &answers[path.as_str()];
        let ours = tpkg::legacy::list_tar(bytes);
        match (ours, theirs.get("members")) {
            (Ok(Some(members)), Some(expected)) => {
                let ours: Vec<Value> = members
                    .iter()
                    .map(|m| {
                        serde_json::json!([m.name, m.data.start, m.data.end - m.data.start, m.kind])
                    })
                    .collect();
                assert_eq!(&Value::from(ours), expected, "{path}");
                listed += 1;
            }
            (Ok(None) | Err(_), None) => failed += 1,
            (ours, _) => panic!("{path}: tpkg {ours:?}, tarfile {theirs}"),
        }
    }
    eprintln!("{listed} listed alike, {failed} refused by both");
    assert!(listed >= 100 && failed >= 20, "{listed} {failed}");
}
