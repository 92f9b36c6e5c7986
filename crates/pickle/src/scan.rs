//! The globals a pickle references, found the way PyTorch's exporter finds
//! them (`PackageExporter.save_pickle`'s walk over `pickletools.genops`).
//!
//! This is a heuristic over opcodes, not the pickle machine: for protocol 3
//! (and below) it reads every GLOBAL; for protocol 4 and above it takes a
//! STACK_GLOBAL's operands to be the last two strings pushed by a
//! `*BINUNICODE*` or fetched by a `*GET`, resolving GETs through a memo that
//! only strings enter, numbered by MEMOIZE. That is what decides which
//! modules PyTorch's exporter depends on, so tpkg repeats it exactly; the
//! decoder (and `tpkg audit`) see every global for certain.

/// One global reference: `module.name`, and the offset of the GLOBAL or
/// STACK_GLOBAL opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRef {
    /// The module.
    pub module: String,
    /// The name inside it.
    pub name: String,
    /// Byte offset of the opcode.
    pub offset: usize,
}

/// Every global reference, in order, as PyTorch's exporter sees them.
/// Malformed data ends the scan early (the decoder reports why).
///
/// ```
/// use tpkg_pickle::scan_globals;
/// // pickle.dumps(collections.OrderedDict(), protocol=3)
/// let refs = scan_globals(b"\x80\x03ccollections\nOrderedDict\nq\x00)Rq\x01.");
/// assert_eq!(refs[0].module, "collections");
/// assert_eq!(refs[0].name, "OrderedDict");
/// assert_eq!(refs[0].offset, 2);
/// ```
pub fn scan_globals(data: &[u8]) -> Vec<GlobalRef> {
    let mut refs = Vec::new();
    let mut pos = 0;
    let mut protocol = 0u8;
    let (mut module, mut field): (Option<String>, Option<String>) = (None, None);
    let mut memo: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut memo_count: u64 = 0;

    let line = |pos: &mut usize| -> Option<String> {
        let rest = data.get(*pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        *pos += end + 1;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let fixed = |pos: &mut usize, len: usize| -> Option<&[u8]> {
        let bytes = data.get(*pos..pos.checked_add(len)?)?;
        *pos += len;
        Some(bytes)
    };
    let le = |bytes: &[u8]| -> u64 {
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };

    while let Some(&op) = data.get(pos) {
        let at = pos;
        pos += 1;
        let mut string_arg: Option<String> = None;
        let mut get_arg: Option<u64> = None;
        let ok: Option<()> = (|| {
            match op {
                b'.' => return None,
                0x80 => protocol = *fixed(&mut pos, 1)?.first()?,
                b'c' => {
                    let m = line(&mut pos)?;
                    let n = line(&mut pos)?;
                    if protocol <= 3 {
                        refs.push(GlobalRef {
                            module: m,
                            name: n,
                            offset: at,
                        });
                    }
                }
                b'i' => {
                    line(&mut pos)?;
                    line(&mut pos)?;
                }
                0x93 => {
                    if protocol >= 4
                        && let (Some(m), Some(n)) = (&module, &field)
                    {
                        refs.push(GlobalRef {
                            module: m.clone(),
                            name: n.clone(),
                            offset: at,
                        });
                    }
                }
                0x8c => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                b'X' => {
                    let len = usize::try_from(le(fixed(&mut pos, 4)?)).ok()?;
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                0x8d => {
                    let len = usize::try_from(le(fixed(&mut pos, 8)?)).ok()?;
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                b'g' => get_arg = line(&mut pos)?.trim().parse().ok(),
                b'h' => get_arg = Some(u64::from(*fixed(&mut pos, 1)?.first()?)),
                b'j' => get_arg = Some(le(fixed(&mut pos, 4)?)),
                0x94 => memo_count += 1,
                // Operand skipping for everything else.
                b'F' | b'I' | b'L' | b'P' | b'S' | b'V' | b'p' => {
                    line(&mut pos)?;
                }
                b'K' | b'q' | 0x82 => {
                    fixed(&mut pos, 1)?;
                }
                b'M' | 0x83 => {
                    fixed(&mut pos, 2)?;
                }
                b'J' | b'r' | 0x84 => {
                    fixed(&mut pos, 4)?;
                }
                b'G' | 0x95 => {
                    fixed(&mut pos, 8)?;
                }
                0x8a => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    fixed(&mut pos, len)?;
                }
                b'T' | b'B' | 0x8b => {
                    let len = usize::try_from(le(fixed(&mut pos, 4)?)).ok()?;
                    fixed(&mut pos, len)?;
                }
                b'U' | b'C' => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    fixed(&mut pos, len)?;
                }
                0x8e | 0x96 => {
                    let len = usize::try_from(le(fixed(&mut pos, 8)?)).ok()?;
                    fixed(&mut pos, len)?;
                }
                _ => {}
            }
            Some(())
        })();
        if ok.is_none() {
            break;
        }
        if protocol >= 4 {
            if let Some(text) = string_arg {
                module = field.take();
                memo.insert(memo_count, text.clone());
                field = Some(text);
            } else if let Some(index) = get_arg {
                module = field.take();
                field = memo.get(&index).cloned();
            }
        }
    }
    refs
}
