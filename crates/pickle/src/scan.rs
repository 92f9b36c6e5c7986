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

use crate::opcode::Opcode::{self, *};

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

    while let Some(&byte) = data.get(pos) {
        let at = pos;
        pos += 1;
        // Unknown bytes have no operand to skip (as before: no arm).
        let Some(op) = Opcode::from_byte(byte) else {
            continue;
        };
        let mut string_arg: Option<String> = None;
        let mut get_arg: Option<u64> = None;
        let ok: Option<()> = (|| {
            match op {
                STOP => return None,
                PROTO => protocol = *fixed(&mut pos, 1)?.first()?,
                GLOBAL => {
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
                INST => {
                    line(&mut pos)?;
                    line(&mut pos)?;
                }
                STACK_GLOBAL => {
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
                SHORT_BINUNICODE => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                BINUNICODE => {
                    let len = usize::try_from(le(fixed(&mut pos, 4)?)).ok()?;
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                BINUNICODE8 => {
                    let len = usize::try_from(le(fixed(&mut pos, 8)?)).ok()?;
                    string_arg = Some(String::from_utf8_lossy(fixed(&mut pos, len)?).into_owned());
                }
                GET => get_arg = line(&mut pos)?.trim().parse().ok(),
                BINGET => get_arg = Some(u64::from(*fixed(&mut pos, 1)?.first()?)),
                LONG_BINGET => get_arg = Some(le(fixed(&mut pos, 4)?)),
                MEMOIZE => memo_count += 1,
                // Operand skipping for everything else.
                FLOAT | INT | LONG | PERSID | STRING | UNICODE | PUT => {
                    line(&mut pos)?;
                }
                BININT1 | BINPUT | EXT1 => {
                    fixed(&mut pos, 1)?;
                }
                BININT2 | EXT2 => {
                    fixed(&mut pos, 2)?;
                }
                BININT | LONG_BINPUT | EXT4 => {
                    fixed(&mut pos, 4)?;
                }
                BINFLOAT | FRAME => {
                    fixed(&mut pos, 8)?;
                }
                LONG1 => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    fixed(&mut pos, len)?;
                }
                BINSTRING | BINBYTES | LONG4 => {
                    let len = usize::try_from(le(fixed(&mut pos, 4)?)).ok()?;
                    fixed(&mut pos, len)?;
                }
                SHORT_BINSTRING | SHORT_BINBYTES => {
                    let len = usize::from(*fixed(&mut pos, 1)?.first()?);
                    fixed(&mut pos, len)?;
                }
                BINBYTES8 | BYTEARRAY8 => {
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
