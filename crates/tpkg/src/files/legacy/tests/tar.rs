//! The tar form.

use super::*;

// The tar form.

/// A ustar header block for `name`.
fn tar_header(name: &str, kind: u8, size: usize) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..107].copy_from_slice(b"0000644");
    block[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    block
}

fn tar_member(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = tar_header(name, kind, data.len());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = members.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

/// `storages`: root 100 (6 float32 0..6) and view 200 = its elements
/// 2..5.
fn tar_storages() -> Vec<u8> {
    let mut out = pickle(&int(1));
    out.extend_from_slice(&pickle(&tuple(&[
        int(100),
        text("cpu"),
        global("torch", "FloatStorage"),
    ])));
    out.extend_from_slice(&6u64.to_le_bytes());
    out.extend_from_slice(&floats(&[0., 1., 2., 3., 4., 5.]));
    out.extend_from_slice(&pickle(
        &[b"](".to_vec(), ints(&[200, 100, 2, 3]), b"e".to_vec()].concat(),
    ));
    out
}

/// `tensors`: 1 = [2, 3] over root 100, 2 = [2] at 1 in view 200.
fn tar_tensors(ndim_override: Option<i32>) -> Vec<u8> {
    let mut out = pickle(&int(2));
    for (key, storage, sizes, strides, offset) in [
        (1i64, 100i64, vec![2i64, 3], vec![3i64, 1], 0i64),
        (2, 200, vec![2], vec![1], 1),
    ] {
        out.extend_from_slice(&pickle(&tuple(&[
            int(key),
            int(storage),
            global("torch", "FloatTensor"),
        ])));
        let ndim = ndim_override.unwrap_or(sizes.len() as i32);
        out.extend_from_slice(&ndim.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for value in sizes.iter().chain(&strides).chain([&offset]) {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out
}

fn tar_object(keys: [&str; 2]) -> Vec<u8> {
    let pid = |key: &str| [text(key), b"Q".to_vec()].concat();
    pickle(&dict(&[("a", pid(keys[0])), ("v", pid(keys[1]))]))
}

fn tar_form(storages: Vec<u8>, tensors: Vec<u8>, object: Vec<u8>) -> Vec<u8> {
    tar(&[
        tar_member("sys_info", b'0', &sys_info(true)),
        tar_member("pickle", b'0', &object),
        tar_member("tensors", b'0', &tensors),
        tar_member("storages", b'0', &storages),
    ])
}

fn good_tar() -> Vec<u8> {
    tar_form(tar_storages(), tar_tensors(None), tar_object(["1", "2"]))
}

#[test]
fn a_hand_made_tar_reads() {
    let bytes = good_tar();
    assert!(looks_legacy_tar(&bytes));
    assert!(!looks_legacy(&bytes));
    let file = open(bytes).unwrap();
    assert_eq!(file.form(), LegacyForm::Tar);
    let names: Vec<_> = file.tar_members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["sys_info", "pickle", "tensors", "storages"]);
    let roles: Vec<_> = file.pickles().iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            PickleRole::SysInfo,
            PickleRole::Object,
            PickleRole::TensorCount,
            PickleRole::TensorHeader,
            PickleRole::TensorHeader,
            PickleRole::StorageCount,
            PickleRole::StorageHeader,
            PickleRole::StorageViews,
        ]
    );
    assert_eq!(file.storages().len(), 1);
    assert_eq!(file.storages()[0].key, "100");
    assert!(file.trailing().is_empty());
    let tensors = file.tensors().unwrap();
    assert_eq!(tensors.len(), 2);
    assert_eq!(tensors[0].0, "a");
    assert_eq!(tensors[0].1.shape(), [2, 3]);
    assert_eq!(
        &tensors[1].1.contiguous_bytes()[..],
        floats(&[3., 4.]),
        "the view starts at element 2, the tensor at 1 in it"
    );
    assert_eq!(tensors[1].1.storage_offset(), 1);
}

#[test]
fn tar_members_torch_load_cannot_use() {
    let storages = tar_storages();
    let tensors = tar_tensors(None);
    let object = tar_object(["1", "2"]);
    let missing = tar(&[
        tar_member("pickle", b'0', &object),
        tar_member("storages", b'0', &storages),
    ]);
    assert!(!looks_legacy_tar(&missing));
    assert!(matches!(
        open(missing).unwrap_err(),
        LegacyError::TarMember { name, .. } if name == "tensors"
    ));
    // A symbolic link named `storages` (tarfile would extract the link
    // and torch.load read whatever it points to).
    let link = tar(&[
        tar_member("pickle", b'0', &object),
        tar_member("tensors", b'0', &tensors),
        tar_member("storages", b'2', b""),
    ]);
    let error = open(link).unwrap_err();
    assert!(error.to_string().contains("not a file"), "{error}");
    // The last member of a name wins, as in tarfile.getmember.
    let twice = tar(&[
        tar_member("pickle", b'0', &tar_object(["9", "9"])),
        tar_member("tensors", b'0', &tensors),
        tar_member("storages", b'0', &storages),
        tar_member("pickle", b'0', &object),
    ]);
    assert_eq!(open(twice).unwrap().tensors().unwrap().len(), 2);
    // A pax header renaming a member.
    let pax = b"17 path=storages\n";
    let renamed = tar(&[
        tar_member("pickle", b'0', &object),
        tar_member("tensors", b'0', &tensors),
        tar_member("pax", b'x', pax),
        tar_member("junk", b'0', &storages),
    ]);
    let file = open(renamed).unwrap();
    assert_eq!(file.tar_members()[2].name, "storages");
    assert_eq!(file.tensors().unwrap().len(), 2);
}

#[test]
fn damaged_tars_are_typed_errors() {
    let bytes = good_tar();
    // Cut inside the storages member's data: tarfile's "unexpected end
    // of data" (and the file is no stream either).
    let storages_data = open(bytes.clone()).unwrap().tar_members()[3].data.clone();
    let error = open(bytes[..storages_data.start as usize + 30].to_vec()).unwrap_err();
    assert!(matches!(error, LegacyError::Tar { .. }), "{error:?}");
    // Tensor metadata: a negative ndim, then too few bytes.
    let negative = tar_form(
        tar_storages(),
        tar_tensors(Some(-1)),
        tar_object(["1", "2"]),
    );
    assert!(matches!(
        open(negative).unwrap_err(),
        LegacyError::TarForm { .. }
    ));
    let huge = tar_form(
        tar_storages(),
        tar_tensors(Some(1 << 20)),
        tar_object(["1", "2"]),
    );
    assert!(matches!(
        open(huge).unwrap_err(),
        LegacyError::Truncated { .. }
    ));
    // A persistent id naming nothing, a storage count past the member.
    let nothing = tar_form(tar_storages(), tar_tensors(None), tar_object(["1", "3"]));
    assert!(matches!(
        open(nothing).unwrap_err(),
        LegacyError::PersistentId { .. }
    ));
    let mut storages = tar_storages();
    let count_at = storages.len()
        - 24
        - 8
        - pickle(&[b"](".to_vec(), ints(&[200, 100, 2, 3]), b"e".to_vec()].concat()).len();
    storages[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let error = open(tar_form(
        storages,
        tar_tensors(None),
        tar_object(["1", "2"]),
    ))
    .unwrap_err();
    assert!(matches!(error, LegacyError::Truncated { .. }), "{error:?}");
    // A bad header after a pax header: tarfile's ReadError.
    let mut bad = tar(&[tar_member("pax", b'x', b"11 size=1\n")]);
    bad.truncate(1024);
    bad[600] = 1;
    assert!(matches!(open(bad).unwrap_err(), LegacyError::Tar { .. }));
    // A zero block first: an empty tar, whose members are missing.
    assert!(matches!(
        open(vec![0; 1024]).unwrap_err(),
        LegacyError::TarMember { .. }
    ));
}

#[test]
fn random_tar_damage_never_panics() {
    damage_never_panics(&good_tar(), 0x2545_f491_4f6c_dd1d);
}
