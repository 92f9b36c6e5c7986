//! The pre-0.4 tar form of `torch.save`, which `torch.load` still reads
//! (with `weights_only=False`; the default `weights_only=True` refuses it).
//!
//! PyTorch 0.1 to 0.3 wrote a tar (`tarfile.PAX_FORMAT`) of four members,
//! each a file the writer filled and `tar.add`ed:
//!
//! - `sys_info`: a pickle of `{protocol_version: 1000, little_endian,
//!   type_sizes}` (never read by the loader);
//! - `pickle`: the object, each tensor and storage in it a persistent id
//!   `str(obj._cdata)` and each `nn.Module` class `(class, source_file,
//!   source)`;
//! - `tensors`: a pickle of the tensor count, then per tensor a pickle of
//!   `(key, storage_key, tensor_type)` and its metadata: `ndim` (4 bytes,
//!   then 4 ignored), `ndim` sizes, `ndim` strides and the storage offset
//!   (8-byte little-endian ints);
//! - `storages`: a pickle of the storage count, then per storage a pickle
//!   of `(key, location, storage_type)`, its element count (8 bytes) and
//!   its elements; then a pickle of the storage views, `(view_key,
//!   root_key, offset, numel)` each.
//!
//! `_legacy_load` opens the file with Python's `tarfile`, reads `storages`,
//! `tensors` and `pickle` (by name, the last member of a name winning), and
//! resolves persistent ids through a dict of tensors and storages by key.
//! The members are listed here as Python 3.11's `tarfile` lists them
//! (header checksums, octal and base-256 numbers, ustar prefixes, GNU long
//! names, pax `path` and `size` records, global pax headers, where the
//! listing stops); sparse members, links and other non-file members under
//! those names are refused. Tensors become `_rebuild_tensor_v2` calls over
//! storage persistent ids in the stream form's layout, so the rest of the
//! legacy reader (and every tensor consumer) sees one model.

use std::collections::HashMap;
use std::ops::Range;

use tpkg_pickle::{Extra, PyStr, Value, ValueGraph, ValueId, python_repr_limited};
use tpkg_tensors::DType;

use super::{
    LegacyError, LegacyStorage, Parsed, Parser, PickleRole, PickleSpan, REPR_LIMIT, SysInfo,
    read_sys_info,
};

const BLOCK: usize = 512;

/// One member of a tar, as Python's `tarfile` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Its name (ustar prefix, GNU long name and pax `path` applied;
    /// trailing slashes of directories removed).
    pub name: String,
    /// Its type flag (`b'0'` or `0` a file, `b'5'` a directory, ...).
    pub kind: u8,
    /// Offset of its first header block (a GNU long name or pax header
    /// before it included).
    pub header: u64,
    /// Its data: `size` bytes from the block after its own header (may
    /// reach past the end of a damaged file; reading it is then an error).
    pub data: Range<u64>,
}

impl TarMember {
    /// Whether `tarfile` extracts it as a file: regular and contiguous
    /// files, and types it does not know.
    fn is_file(&self) -> bool {
        matches!(self.kind, b'0' | 0 | b'7') || !is_supported(self.kind)
    }
}

/// Types `tarfile` knows (others it treats as regular files).
fn is_supported(kind: u8) -> bool {
    matches!(kind, b'0'..=b'7' | 0 | b'L' | b'K' | b'S')
}

/// Types whose data blocks follow the header.
fn has_data(kind: u8) -> bool {
    matches!(kind, b'0' | 0 | b'7' | b'S') || !is_supported(kind)
}

/// `tarfile`'s `_block`: `size` rounded up to whole blocks.
fn padded(size: u64) -> Option<u64> {
    size.div_ceil(BLOCK as u64).checked_mul(BLOCK as u64)
}

/// Python's `int(text, radix)` for the texts tar headers hold: surrounding
/// whitespace, a sign, a `0o` prefix for octal, `_` between digits.
fn python_int(text: &str, radix: u32) -> Option<i128> {
    let text =
        text.trim_matches(|c: char| c.is_ascii_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = if radix == 8 {
        digits
            .strip_prefix("0o")
            .or_else(|| digits.strip_prefix("0O"))
            .map_or(digits, |rest| rest.strip_prefix('_').unwrap_or(rest))
    } else {
        digits
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix)?;
        value = value
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(digit))?;
    }
    Some(if negative { -value } else { value })
}

/// `tarfile.nts`: the text up to the first NUL.
fn nts(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Why a header block does not parse (`tarfile`'s header errors).
#[derive(Debug)]
enum HeaderError {
    /// No bytes at all.
    Empty,
    /// Fewer than 512 bytes.
    Truncated,
    /// A block of zeros: the end of the archive.
    Eof,
    /// A bad checksum or number field.
    Invalid(&'static str),
}

impl HeaderError {
    fn reason(&self) -> &'static str {
        match self {
            HeaderError::Empty => "empty header",
            HeaderError::Truncated => "truncated header",
            HeaderError::Eof => "end of file header",
            HeaderError::Invalid(reason) => reason,
        }
    }
}

/// `tarfile.nti`: an octal text or a base-256 number.
fn nti(field: &[u8]) -> Result<i128, HeaderError> {
    match field.first() {
        Some(&lead @ (0o200 | 0o377)) => {
            let mut n: i128 = 0;
            for &byte in &field[1..] {
                n = (n << 8) + i128::from(byte);
            }
            if lead == 0o377 {
                n -= 1i128 << (8 * (field.len() - 1));
            }
            Ok(n)
        }
        _ => {
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            let text = std::str::from_utf8(&field[..end])
                .ok()
                .filter(|t| t.is_ascii())
                .ok_or(HeaderError::Invalid("a number field is not ASCII"))?;
            let trimmed = text
                .trim_matches(|c: char| c.is_ascii_whitespace() || ('\x1c'..='\x1f').contains(&c));
            if trimmed.is_empty() {
                return Ok(0);
            }
            python_int(trimmed, 8).ok_or(HeaderError::Invalid("a number field is not octal"))
        }
    }
}

/// One header block, as `TarInfo.frombuf` reads it.
struct Header {
    name: String,
    size: i128,
    kind: u8,
}

fn frombuf(buf: &[u8]) -> Result<Header, HeaderError> {
    if buf.is_empty() {
        return Err(HeaderError::Empty);
    }
    if buf.len() != BLOCK {
        return Err(HeaderError::Truncated);
    }
    if buf.iter().all(|&b| b == 0) {
        return Err(HeaderError::Eof);
    }
    let checksum = nti(&buf[148..156])?;
    let unsigned: i128 = 256
        + buf[..148]
            .iter()
            .chain(&buf[156..])
            .map(|&b| i128::from(b))
            .sum::<i128>();
    let signed: i128 = 256
        + buf[..148]
            .iter()
            .chain(&buf[156..])
            .map(|&b| i128::from(b as i8))
            .sum::<i128>();
    if checksum != unsigned && checksum != signed {
        return Err(HeaderError::Invalid("bad checksum"));
    }
    for field in [100..108, 108..116, 116..124, 136..148, 329..337, 337..345] {
        nti(&buf[field])?;
    }
    let size = nti(&buf[124..136])?;
    let mut kind = buf[156];
    let mut name = nts(&buf[0..100]);
    let prefix = nts(&buf[345..500]);
    if kind == 0 && name.ends_with('/') {
        kind = b'5';
    }
    if kind == b'5' {
        name = name.trim_end_matches('/').to_owned();
    }
    if !prefix.is_empty() && !matches!(kind, b'L' | b'K' | b'S') {
        name = format!("{prefix}/{name}");
    }
    Ok(Header { name, size, kind })
}

/// The records of a pax header's data, as `_proc_pax` (Python 3.11.7)
/// parses them: `"%d %s=%s\n"`, each record's length counting itself.
fn pax_records(buf: &[u8]) -> Result<Vec<(String, String)>, HeaderError> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    loop {
        // (\d+) ([^=]+)=
        let digits = buf[pos.min(buf.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || buf.get(pos + digits) != Some(&b' ') {
            break;
        }
        let keyword_start = pos + digits + 1;
        let keyword_len = buf[keyword_start..]
            .iter()
            .take_while(|&&b| b != b'=')
            .count();
        if keyword_len == 0 || buf.get(keyword_start + keyword_len) != Some(&b'=') {
            break;
        }
        let Ok(length) = std::str::from_utf8(&buf[pos..pos + digits])
            .unwrap_or("")
            .parse::<u64>()
        else {
            // More digits than any buffer: past the end, so the loop ends.
            break;
        };
        if length == 0 {
            return Err(HeaderError::Invalid("a pax record of length 0"));
        }
        let keyword_end = keyword_start + keyword_len;
        let value_end = (pos as u64 + length - 1).min(buf.len() as u64) as usize;
        let value = buf.get(keyword_end + 1..value_end).unwrap_or(&[]);
        records.push((
            String::from_utf8_lossy(&buf[keyword_start..keyword_end]).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        match usize::try_from(pos as u64 + length) {
            Ok(next) if next < buf.len() => pos = next,
            _ => break,
        }
    }
    Ok(records)
}

/// A header waiting for the member it describes.
enum Pending {
    LongName(String),
    LongLink,
    /// An extended pax header's records (global ones included), or a
    /// global header (`None`, already merged).
    Pax(Option<HashMap<String, String>>),
}

/// What ends a listing.
enum Stop {
    /// A header `tarfile` gives up on quietly (or a file that is no tar,
    /// at offset 0).
    Header(HeaderError),
    /// A `tarfile.ReadError`.
    Fatal(LegacyError),
}

fn tar_error(offset: usize, reason: impl Into<String>) -> LegacyError {
    LegacyError::Tar {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// `_apply_pax_info` for the fields tpkg uses: `path` and `size`.
fn apply_pax(member: &mut TarMember, size: &mut i128, pax: &HashMap<String, String>) {
    if let Some(path) = pax.get("path") {
        member.name = path.trim_end_matches('/').to_owned();
    }
    if let Some(text) = pax.get("size") {
        *size = python_int(text, 10).unwrap_or(0);
    }
}

/// Reads the member whose (first) header is at `offset`, as
/// `TarInfo.fromtarfile` does; returns it and where the next header is.
fn read_member(
    bytes: &[u8],
    offset: usize,
    global: &mut HashMap<String, String>,
) -> Result<(TarMember, usize, i128), Stop> {
    let mut pending: Vec<Pending> = Vec::new();
    let mut pos = offset;
    loop {
        let block = bytes
            .get(pos..)
            .map_or(&[][..], |rest| &rest[..rest.len().min(BLOCK)]);
        let header = match frombuf(block) {
            Ok(header) => header,
            Err(error) if pending.is_empty() => return Err(Stop::Header(error)),
            Err(error) => {
                return Err(Stop::Fatal(tar_error(
                    pos,
                    format!("missing or bad subsequent header: {}", error.reason()),
                )));
            }
        };
        if header.size < 0 {
            return Err(Stop::Fatal(tar_error(pos, "a header with a negative size")));
        }
        let size = u64::try_from(header.size).unwrap_or(u64::MAX);
        let data_start = pos + BLOCK;
        let data_end = padded(size)
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| data_start.checked_add(len));
        match header.kind {
            b'L' | b'K' | b'x' | b'g' | b'X' => {
                let Some(data_end) = data_end else {
                    return Err(Stop::Fatal(tar_error(
                        pos,
                        "a header's data is past the file",
                    )));
                };
                let data = bytes
                    .get(data_start..data_end.min(bytes.len()))
                    .unwrap_or(&[]);
                match header.kind {
                    b'L' => pending.push(Pending::LongName(nts(data))),
                    b'K' => pending.push(Pending::LongLink),
                    kind => {
                        let records = match pax_records(data) {
                            Ok(records) => records,
                            Err(error) if pending.is_empty() => return Err(Stop::Header(error)),
                            Err(error) => {
                                return Err(Stop::Fatal(tar_error(
                                    pos,
                                    format!("bad pax header: {}", error.reason()),
                                )));
                            }
                        };
                        if records.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
                            return Err(Stop::Fatal(tar_error(
                                pos,
                                "a sparse member (tpkg does not read sparse tar members)",
                            )));
                        }
                        if kind == b'g' {
                            global.extend(records);
                            pending.push(Pending::Pax(None));
                        } else {
                            let mut local = global.clone();
                            local.extend(records);
                            pending.push(Pending::Pax(Some(local)));
                        }
                    }
                }
                pos = data_end;
            }
            b'S' => {
                return Err(Stop::Fatal(tar_error(
                    pos,
                    "a sparse member (tpkg does not read sparse tar members)",
                )));
            }
            kind => {
                let mut member = TarMember {
                    name: header.name,
                    kind,
                    header: offset as u64,
                    data: 0..0,
                };
                let mut size = header.size;
                let skip = |size: i128| -> Option<usize> {
                    if !has_data(kind) {
                        return Some(data_start);
                    }
                    let len = usize::try_from(padded(u64::try_from(size).ok()?)?).ok()?;
                    data_start.checked_add(len)
                };
                let mut next = skip(size);
                apply_pax(&mut member, &mut size, global);
                if kind == b'5' {
                    member.name = member.name.trim_end_matches('/').to_owned();
                }
                while let Some(header) = pending.pop() {
                    match header {
                        Pending::LongName(name) => {
                            member.name = name;
                            if kind == b'5' {
                                member.name = member
                                    .name
                                    .strip_suffix('/')
                                    .unwrap_or(&member.name)
                                    .to_owned();
                            }
                        }
                        Pending::LongLink | Pending::Pax(None) => {}
                        Pending::Pax(Some(pax)) => {
                            apply_pax(&mut member, &mut size, &pax);
                            if pax.contains_key("size") {
                                next = skip(size);
                            }
                        }
                    }
                }
                if size < 0 {
                    return Err(Stop::Fatal(tar_error(pos, "a member with a negative size")));
                }
                let Some(next) = next else {
                    return Err(Stop::Fatal(tar_error(
                        pos,
                        "a member's data is past the file",
                    )));
                };
                let start = data_start as u64;
                member.data = start..start.saturating_add(u64::try_from(size).unwrap_or(u64::MAX));
                return Ok((member, next, size));
            }
        }
    }
}

/// The members of `bytes` as `tarfile.open(mode="r:")` lists them, or
/// `None` if it refuses the file as no tar at all (then `torch.load` reads
/// the file as a stream). Listing stops quietly where `tarfile` does (a
/// zero block, a bad header after the first); it fails where `tarfile`
/// raises `ReadError` (a bad header after a long name or pax header, data
/// past the end of the file).
pub(super) fn members(bytes: &[u8]) -> Result<Option<(Vec<TarMember>, usize)>, LegacyError> {
    let mut members = Vec::new();
    let mut global = HashMap::new();
    let mut offset = 0usize;
    loop {
        // TarFile.next: the next header must start inside the file (or at
        // its very end, where the listing then stops).
        if offset > bytes.len() {
            return Err(tar_error(offset, "unexpected end of data"));
        }
        match read_member(bytes, offset, &mut global) {
            Ok((member, next, _)) => {
                members.push(member);
                offset = next;
            }
            Err(Stop::Header(HeaderError::Eof)) => break,
            Err(Stop::Header(_)) if offset == 0 => return Ok(None),
            Err(Stop::Header(_)) => break,
            Err(Stop::Fatal(error)) => return Err(error),
        }
    }
    Ok(Some((members, offset)))
}

/// The last member named `name` (`TarFile.getmember`), which must be a file.
fn member<'m>(
    members: &'m [TarMember],
    name: &str,
    len: usize,
) -> Result<&'m TarMember, LegacyError> {
    let member = members
        .iter()
        .rev()
        .find(|m| m.name == name)
        .ok_or_else(|| LegacyError::TarMember {
            name: name.to_owned(),
            reason: "is not in the tar (torch.load: KeyError)".to_owned(),
        })?;
    if !member.is_file() {
        return Err(LegacyError::TarMember {
            name: name.to_owned(),
            reason: format!(
                "is not a file (tar type {:?}); torch.load would follow it",
                char::from(member.kind)
            ),
        });
    }
    if member.data.end > len as u64 {
        return Err(tar_error(
            member.data.start as usize,
            format!(
                "member {name:?} ends past the end of the file (tarfile: unexpected end of data)"
            ),
        ));
    }
    Ok(member)
}

/// A storage (or storage view) the `storages` member defines.
#[derive(Debug, Clone)]
struct StorageDef {
    root: String,
    dtype: DType,
    location: String,
    root_numel: u64,
    /// `(view key, offset, numel)` for a view.
    view: Option<(String, u64, u64)>,
}

/// A tensor the `tensors` member defines.
struct TensorDef {
    storage: StorageDef,
    sizes: Vec<u64>,
    strides: Vec<u64>,
    offset: u64,
}

fn malformed(offset: u64, reason: String) -> LegacyError {
    LegacyError::TarForm { offset, reason }
}

/// A key in the `storages` or `tensors` member: an int (`obj._cdata`).
fn int_key(graph: &ValueGraph, id: ValueId, at: u64, what: &str) -> Result<String, LegacyError> {
    match graph.get(id) {
        Value::Int(n) => Ok(n.to_string()),
        Value::BigInt(n) => Ok(n.to_string()),
        _ => Err(malformed(
            at,
            format!(
                "the {what} is {}, not an int",
                python_repr_limited(graph, id, REPR_LIMIT)
            ),
        )),
    }
}

/// The items of a tuple or list (what Python unpacks).
fn items(graph: &ValueGraph, id: ValueId) -> Option<&[ValueId]> {
    match graph.get(id) {
        Value::Tuple(items) | Value::List(items) => Some(items),
        _ => None,
    }
}

/// A count pickle: `range(count)` takes an int (a bool is one; a negative
/// count is an empty range).
fn count(graph: &ValueGraph, at: u64, what: &str) -> Result<u64, LegacyError> {
    match graph.get(graph.root()) {
        Value::Int(n) => Ok(u64::try_from(*n).unwrap_or(0)),
        Value::Bool(b) => Ok(u64::from(*b)),
        _ => Err(malformed(
            at,
            format!(
                "the {what} is {}, not an int",
                python_repr_limited(graph, graph.root(), REPR_LIMIT)
            ),
        )),
    }
}

/// Reads the tar form whose members `members` lists.
pub(super) fn parse(
    bytes: &[u8],
    members: Vec<TarMember>,
    listing_end: usize,
) -> Result<Parsed, LegacyError> {
    let mut pickles: Vec<PickleSpan> = Vec::new();
    let region = |member: &TarMember| member.data.start as usize..member.data.end as usize;

    // storages: the roots, then the views.
    let storages_member = member(&members, "storages", bytes.len())?;
    let mut parser = Parser::region(bytes, region(storages_member));
    let (graph, at) = parser.pickle(PickleRole::StorageCount)?;
    let n = count(&graph, at, "storage count")?;
    let mut storages: Vec<LegacyStorage> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut defs: HashMap<String, StorageDef> = HashMap::new();
    for _ in 0..n {
        let (graph, at) = parser.pickle(PickleRole::StorageHeader)?;
        let Some([key, location, storage_type]) =
            items(&graph, graph.root()).and_then(|items| <&[ValueId; 3]>::try_from(items).ok())
        else {
            return Err(malformed(
                at,
                format!(
                    "a storage header is {}, not (key, location, storage_type)",
                    python_repr_limited(&graph, graph.root(), REPR_LIMIT)
                ),
            ));
        };
        let key = int_key(&graph, *key, at, "storage key")?;
        let location = match graph.get(*location) {
            Value::Str(text) => text.to_string_lossy(),
            Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => {
                return Err(malformed(
                    at,
                    "the storage location is not a string".to_owned(),
                ));
            }
        };
        let dtype = match graph.get(*storage_type) {
            Value::Global { module, name } if module == "torch" && name != "UntypedStorage" => {
                DType::from_storage_type(name)
            }
            _ => None,
        }
        .ok_or_else(|| {
            malformed(
                at,
                format!(
                    "the storage type {} is not a typed torch storage class",
                    python_repr_limited(&graph, *storage_type, REPR_LIMIT)
                ),
            )
        })?;
        if defs.contains_key(&key) {
            return Err(LegacyError::DuplicateStorage { key, offset: at });
        }
        let (header, data) = parser.storage_block(&key, dtype, None)?;
        let numel = (data.end - data.start) / dtype.element_size() as u64;
        defs.insert(
            key.clone(),
            StorageDef {
                root: key.clone(),
                dtype,
                location: location.clone(),
                root_numel: numel,
                view: None,
            },
        );
        by_key.insert(key.clone(), storages.len());
        storages.push(LegacyStorage {
            key,
            dtype,
            numel,
            location,
            header,
            data,
        });
    }
    let (graph, at) = parser.pickle(PickleRole::StorageViews)?;
    let views = items(&graph, graph.root()).ok_or_else(|| {
        malformed(
            at,
            format!(
                "the storage views are {}, not a list",
                python_repr_limited(&graph, graph.root(), REPR_LIMIT)
            ),
        )
    })?;
    for &view in views {
        let Some([target, root, offset, numel]) =
            items(&graph, view).and_then(|items| <&[ValueId; 4]>::try_from(items).ok())
        else {
            return Err(malformed(
                at,
                "a storage view is not (view_key, root_key, offset, numel)".to_owned(),
            ));
        };
        let target = int_key(&graph, *target, at, "storage view key")?;
        let root = int_key(&graph, *root, at, "storage view root")?;
        let number = |id: ValueId, what: &str| match graph.get(id) {
            Value::Int(n) if *n >= 0 => Ok(*n as u64),
            _ => Err(malformed(
                at,
                format!("the storage view {what} is not a non-negative int"),
            )),
        };
        let (offset, numel) = (number(*offset, "offset")?, number(*numel, "size")?);
        let Some(parent) = defs.get(&root).cloned() else {
            return Err(LegacyError::MissingStorage {
                key: root,
                offset: at,
            });
        };
        // A view of a view is a view of the root, further in.
        let (base, available) = match &parent.view {
            Some((_, base, numel)) => (*base, *numel),
            None => (0, parent.root_numel),
        };
        if u128::from(offset) + u128::from(numel) > u128::from(available) {
            return Err(malformed(
                at,
                format!(
                    "storage view {target:?} takes elements {offset}..{} of storage {root:?}, which has {available}",
                    u128::from(offset) + u128::from(numel)
                ),
            ));
        }
        if defs.contains_key(&target) {
            return Err(malformed(
                at,
                format!("storage view key {target:?} is already a storage"),
            ));
        }
        let def = StorageDef {
            view: Some((target.clone(), base + offset, numel)),
            ..parent
        };
        defs.insert(target, def);
    }
    pickles.append(&mut parser.pickles);

    // tensors.
    let tensors_member = member(&members, "tensors", bytes.len())?;
    let mut parser = Parser::region(bytes, region(tensors_member));
    let (graph, at) = parser.pickle(PickleRole::TensorCount)?;
    let n = count(&graph, at, "tensor count")?;
    let mut tensors: HashMap<String, TensorDef> = HashMap::new();
    for _ in 0..n {
        let (graph, at) = parser.pickle(PickleRole::TensorHeader)?;
        let Some([key, storage, _tensor_type]) =
            items(&graph, graph.root()).and_then(|items| <&[ValueId; 3]>::try_from(items).ok())
        else {
            return Err(malformed(
                at,
                "a tensor header is not (key, storage_key, tensor_type)".to_owned(),
            ));
        };
        let key = int_key(&graph, *key, at, "tensor key")?;
        let storage_key = int_key(&graph, *storage, at, "tensor's storage key")?;
        let Some(storage) = defs.get(&storage_key).cloned() else {
            return Err(LegacyError::MissingStorage {
                key: storage_key,
                offset: at,
            });
        };
        if defs.contains_key(&key) || tensors.contains_key(&key) {
            return Err(malformed(
                at,
                format!("tensor key {key:?} is already taken"),
            ));
        }
        let (meta, end) = (parser.pos, parser.end);
        let truncated = |needed: u64| LegacyError::Truncated {
            what: format!("the metadata of tensor {key:?}"),
            offset: meta as u64,
            needed,
            available: (end - meta) as u64,
        };
        let Some(ndim) = bytes[..end].get(meta..meta + 4) else {
            return Err(truncated(8));
        };
        let ndim = i32::from_le_bytes([ndim[0], ndim[1], ndim[2], ndim[3]]);
        let Ok(ndim) = usize::try_from(ndim) else {
            return Err(malformed(
                meta as u64,
                format!("tensor {key:?} has {ndim} dimensions"),
            ));
        };
        // ndim (4 bytes, 4 ignored), sizes, strides, offset.
        let needed = 8 + 16 * ndim as u64 + 8;
        if needed > (end - meta) as u64 {
            return Err(truncated(needed));
        }
        let mut fields = Vec::with_capacity(2 * ndim + 1);
        for index in 0..=2 * ndim {
            let start = meta + 8 + 8 * index;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[start..start + 8]);
            let value = u64::try_from(i64::from_le_bytes(raw)).map_err(|_| {
                malformed(
                    meta as u64,
                    format!("tensor {key:?} has a negative size, stride or offset"),
                )
            })?;
            fields.push(value);
        }
        parser.pos = meta + needed as usize;
        tensors.insert(
            key,
            TensorDef {
                storage,
                sizes: fields[..ndim].to_vec(),
                strides: fields[ndim..2 * ndim].to_vec(),
                offset: fields[2 * ndim],
            },
        );
    }
    pickles.append(&mut parser.pickles);

    // pickle: the object.
    let pickle_member = member(&members, "pickle", bytes.len())?;
    let mut parser = Parser::region(bytes, region(pickle_member));
    let (mut graph, object_start) = parser.pickle(PickleRole::Object)?;
    pickles.append(&mut parser.pickles);
    resolve(&mut graph, object_start, &defs, &tensors)?;

    // sys_info: never read by torch.load; read here for the byte order.
    let mut sys_info = SysInfo::default();
    let info = members
        .iter()
        .rev()
        .find(|m| m.name == "sys_info" && m.is_file() && m.data.end <= bytes.len() as u64);
    if let Some(info) = info {
        let mut parser = Parser::region(bytes, region(info));
        if let Ok((graph, at)) = parser.pickle(PickleRole::SysInfo) {
            sys_info = read_sys_info(&graph);
            if sys_info.little_endian == Some(false) {
                return Err(LegacyError::BigEndian { offset: at });
            }
            pickles.append(&mut parser.pickles);
        }
    }
    pickles.sort_by_key(|span| span.range.start);

    // What follows the listing, unless it is only the end-of-archive zeros.
    let rest = bytes.get(listing_end..).unwrap_or(&[]);
    let data_end = if rest.iter().all(|&b| b == 0) {
        bytes.len()
    } else {
        listing_end
    };
    Ok(Parsed {
        pickles,
        sys_info,
        graph,
        storages,
        by_key,
        data_end: data_end as u64,
    })
}

/// `persistent_load` of the tar form: a tuple is a module class (its first
/// item), anything else `int(saved_id)`, a tensor or storage key. Tensors
/// become `_rebuild_tensor_v2` calls, storages storage persistent ids, both
/// in the stream form's layout.
fn resolve(
    graph: &mut ValueGraph,
    start: u64,
    storages: &HashMap<String, StorageDef>,
    tensors: &HashMap<String, TensorDef>,
) -> Result<(), LegacyError> {
    let pids: Vec<(ValueId, ValueId)> = graph
        .iter()
        .filter_map(|(id, value)| match value {
            Value::PersistentId(pid) => Some((id, *pid)),
            _ => None,
        })
        .collect();
    let mut rebuild = None;
    for (id, pid) in pids {
        let offset = start + graph.origin(id).unwrap_or(0) as u64;
        let refuse = |reason: String| LegacyError::PersistentId { offset, reason };
        if let Value::Tuple(fields) = graph.get(pid) {
            let Some(&class) = fields.first() else {
                return Err(refuse("an empty tuple".to_owned()));
            };
            let class = graph.get(class).clone();
            *graph.get_mut(id) = class;
            continue;
        }
        let key = match graph.get(pid) {
            Value::Str(text) => text.as_str().and_then(|t| python_int(t, 10)),
            Value::Bytes(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| python_int(t, 10)),
            Value::Int(n) => Some(i128::from(*n)),
            _ => None,
        }
        .map(|n| n.to_string())
        .ok_or_else(|| {
            refuse(format!(
                "{} is not a tensor or storage key (torch.load calls int() on it)",
                python_repr_limited(graph, pid, REPR_LIMIT)
            ))
        })?;
        if let Some(tensor) = tensors.get(&key) {
            let storage = storage_id(graph, &tensor.storage);
            let callable = *rebuild.get_or_insert_with(|| {
                graph.add(Value::Global {
                    module: "torch._utils".to_owned(),
                    name: "_rebuild_tensor_v2".to_owned(),
                })
            });
            let mut args = vec![storage, int(graph, tensor.offset)];
            let sizes = tensor.sizes.iter().map(|&n| int(graph, n)).collect();
            args.push(graph.add(Value::Tuple(sizes)));
            let strides = tensor.strides.iter().map(|&n| int(graph, n)).collect();
            args.push(graph.add(Value::Tuple(strides)));
            args.push(graph.add(Value::Bool(false)));
            args.push(graph.add(Value::OrderedDict {
                items: Vec::new(),
                state: None,
            }));
            let args = graph.add(Value::Tuple(args));
            *graph.get_mut(id) = Value::Reduce {
                callable,
                args,
                extra: Box::new(Extra::default()),
            };
        } else if let Some(storage) = storages.get(&key) {
            let storage = storage_id(graph, storage);
            let tuple = match graph.get(storage) {
                Value::PersistentId(tuple) => *tuple,
                _ => storage,
            };
            *graph.get_mut(id) = Value::PersistentId(tuple);
        } else {
            return Err(refuse(format!(
                "key {key} names no tensor or storage of the file"
            )));
        }
    }
    Ok(())
}

fn int(graph: &mut ValueGraph, n: u64) -> ValueId {
    graph.add(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn text(graph: &mut ValueGraph, text: &str) -> ValueId {
    graph.add(Value::Str(PyStr::from(text)))
}

/// A legacy storage persistent id for `storage`: `('storage',
/// torch.<Type>Storage, root_key, location, root_numel, view_metadata)`.
fn storage_id(graph: &mut ValueGraph, storage: &StorageDef) -> ValueId {
    let mut fields = vec![text(graph, "storage")];
    fields.push(graph.add(Value::Global {
        module: "torch".to_owned(),
        name: storage.dtype.storage_type().to_owned(),
    }));
    fields.push(text(graph, &storage.root));
    fields.push(text(graph, &storage.location));
    fields.push(int(graph, storage.root_numel));
    let view = match &storage.view {
        None => graph.add(Value::None),
        Some((key, offset, numel)) => {
            let items = vec![text(graph, key), int(graph, *offset), int(graph, *numel)];
            graph.add(Value::Tuple(items))
        }
    };
    fields.push(view);
    let tuple = graph.add(Value::Tuple(fields));
    graph.add(Value::PersistentId(tuple))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_ints() {
        for (text, radix, value) in [
            ("17", 8, Some(15)),
            (" 0o17 ", 8, Some(15)),
            ("1_0", 10, Some(10)),
            ("-12", 10, Some(-12)),
            ("1__0", 10, None),
            ("_1", 10, None),
            ("8", 8, None),
            ("", 10, None),
        ] {
            assert_eq!(python_int(text, radix), value, "{text:?}");
        }
    }

    #[test]
    fn pax_records_parse_as_tarfile_does() {
        let records = pax_records(b"19 path=a/storages\n11 size=10\n\0\0\0").unwrap();
        assert_eq!(
            records,
            [
                ("path".to_owned(), "a/storages".to_owned()),
                ("size".to_owned(), "10".to_owned())
            ]
        );
        assert!(pax_records(b"0 path=x\n").is_err());
        assert!(pax_records(b"garbage").unwrap().is_empty());
    }
}
