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

use super::LegacyError;

mod form;

pub(super) use form::parse;

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
