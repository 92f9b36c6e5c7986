//! Python's `repr()` of pickled values: how `tpkg show` prints them and how
//! the value image names non-string dict keys and set members.

use std::fmt::Write as _;

use crate::value::{PyStr, Value, ValueGraph, ValueId};

/// Deepest nesting printed; deeper values print as `...`.
const MAX_DEPTH: usize = 1000;

/// Python's `repr(float)`: the shortest text that reads back as the same
/// float, in fixed notation for exponents from -4 to 15 and scientific
/// notation (`1e+16`, `1e-05`) otherwise.
///
/// ```
/// use tpkg_pickle::python_float_repr as repr;
/// assert_eq!(repr(1.0), "1.0");
/// assert_eq!(repr(-0.0), "-0.0");
/// assert_eq!(repr(1e308), "1e+308");
/// assert_eq!(repr(-2.25e-300), "-2.25e-300");
/// assert_eq!(repr(0.0001), "0.0001");
/// assert_eq!(repr(1e-5), "1e-05");
/// assert_eq!(repr(1e16), "1e+16");
/// assert_eq!(repr(123456789012345.6), "123456789012345.6");
/// assert_eq!(repr(f64::INFINITY), "inf");
/// assert_eq!(repr(f64::NAN), "nan");
/// ```
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-2.25e-300".
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        // Fixed notation with at least one digit after the point.
        let point = exponent + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{text}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs())
    }
}

/// Python's `repr(str)`.
fn python_str_repr(text: &PyStr) -> String {
    let lossy = text.to_string_lossy();
    let quote = if lossy.contains('\'') && !lossy.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(lossy.len() + 2);
    out.push(quote);
    for c in lossy.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(bytes)`.
fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from("b");
    out.push(quote);
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if char::from(b) == quote => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a value, for the values pickles hold. Shared and
/// cyclic structures print `...` where Python would recurse.
///
/// ```
/// use tpkg_pickle::{decode, python_repr};
/// // pickle.dumps({1: (b"x", None)}, protocol=3)
/// let graph = decode(b"\x80\x03}q\x00K\x01C\x01xq\x01N\x86q\x02s.").unwrap();
/// assert_eq!(python_repr(&graph, graph.root()), "{1: (b'x', None)}");
/// ```
pub fn python_repr(graph: &ValueGraph, id: ValueId) -> String {
    python_repr_limited(graph, id, MAX_REPR_LEN)
}

/// [`python_repr`], stopping (with `...`) once the text passes `max_len`
/// bytes: what a caller asking "does it fit in a line?" needs, at a cost
/// bounded by the line, however much the value expands.
///
/// ```
/// use tpkg_pickle::{decode, python_repr_limited};
/// // pickle.dumps(list(range(1000)), protocol=3)
/// # let mut data = b"\x80\x03]q\x00(".to_vec();
/// # for i in 0..1000u16 { data.push(b'M'); data.extend_from_slice(&i.to_le_bytes()); }
/// # data.extend_from_slice(b"e.");
/// let graph = decode(&data).unwrap();
/// let text = python_repr_limited(&graph, graph.root(), 20);
/// assert!(text.len() < 40 && text.ends_with("...]"), "{text}");
/// ```
pub fn python_repr_limited(graph: &ValueGraph, id: ValueId, max_len: usize) -> String {
    let mut out = String::new();
    let mut on_path = Vec::new();
    repr_into(graph, id, &mut out, &mut on_path, max_len.min(MAX_REPR_LEN));
    out
}

/// Longest repr text produced; the rest is elided with `...`.
const MAX_REPR_LEN: usize = 64 << 20;

fn repr_into(
    graph: &ValueGraph,
    id: ValueId,
    out: &mut String,
    on_path: &mut Vec<ValueId>,
    limit: usize,
) {
    if on_path.contains(&id) || on_path.len() > MAX_DEPTH || out.len() > limit {
        if out.len() > limit && out.ends_with("...") {
            return;
        }
        out.push_str("...");
        return;
    }
    on_path.push(id);
    let seq = |out: &mut String,
               items: &[ValueId],
               open: &str,
               close: &str,
               on_path: &mut Vec<ValueId>| {
        out.push_str(open);
        for (i, item) in items.iter().enumerate() {
            if out.len() > limit {
                out.push_str(", ...");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            repr_into(graph, *item, out, on_path, limit);
        }
        out.push_str(close);
    };
    let pairs = |out: &mut String, items: &[(ValueId, ValueId)], on_path: &mut Vec<ValueId>| {
        for (i, (k, v)) in items.iter().enumerate() {
            if out.len() > limit {
                out.push_str(", ...");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            repr_into(graph, *k, out, on_path, limit);
            out.push_str(": ");
            repr_into(graph, *v, out, on_path, limit);
        }
    };
    match graph.get(id) {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => out.push_str(&python_float_repr(*x)),
        Value::Complex(re, im) => {
            let im_text = python_float_repr(*im);
            let im_text = im_text.strip_suffix(".0").unwrap_or(&im_text);
            if *re == 0.0 && re.is_sign_positive() {
                let _ = write!(out, "{im_text}j");
            } else {
                let re_text = python_float_repr(*re);
                let re_text = re_text.strip_suffix(".0").unwrap_or(&re_text);
                let sign = if im_text.starts_with('-') { "" } else { "+" };
                let _ = write!(out, "({re_text}{sign}{im_text}j)");
            }
        }
        Value::Str(text) => out.push_str(&python_str_repr(text)),
        Value::Bytes(bytes) => out.push_str(&python_bytes_repr(bytes)),
        Value::ByteArray(bytes) => {
            let _ = write!(out, "bytearray({})", python_bytes_repr(bytes));
        }
        Value::Tuple(items) if items.len() == 1 => seq(out, items, "(", ",)", on_path),
        Value::Tuple(items) => seq(out, items, "(", ")", on_path),
        Value::List(items) => seq(out, items, "[", "]", on_path),
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => seq(out, items, "{", "}", on_path),
        Value::FrozenSet(items) if items.is_empty() => out.push_str("frozenset()"),
        Value::FrozenSet(items) => seq(out, items, "frozenset({", "})", on_path),
        Value::Dict(items) => {
            out.push('{');
            pairs(out, items, on_path);
            out.push('}');
        }
        Value::OrderedDict { items, .. } => {
            out.push_str("OrderedDict({");
            pairs(out, items, on_path);
            out.push_str("})");
        }
        Value::TorchSize(items) => {
            out.push_str("torch.Size(");
            seq(out, items, "[", "]", on_path);
            out.push(')');
        }
        Value::TorchDevice(device) => {
            let _ = write!(out, "device(type='{}')", device.replace(':', "', index="));
        }
        Value::TorchDtype(name) => {
            let _ = write!(out, "torch.{name}");
        }
        Value::Global { module, name } => {
            let _ = write!(out, "{module}.{name}");
        }
        Value::Reduce {
            callable,
            args,
            extra,
        } => {
            repr_into(graph, *callable, out, on_path, limit);
            match graph.get(*args) {
                Value::Tuple(items) => seq(out, items, "(", ")", on_path),
                _ => {
                    out.push('(');
                    repr_into(graph, *args, out, on_path, limit);
                    out.push(')');
                }
            }
            state_suffix(graph, extra, out, on_path, limit);
        }
        Value::Object {
            class, args, extra, ..
        } => {
            out.push('<');
            repr_into(graph, *class, out, on_path, limit);
            if let Value::Tuple(items) = graph.get(*args)
                && !items.is_empty()
            {
                seq(out, items, "(", ")", on_path);
            }
            out.push_str(" object");
            state_suffix(graph, extra, out, on_path, limit);
            out.push('>');
        }
        Value::PersistentId(pid) => {
            out.push_str("persistent_id(");
            repr_into(graph, *pid, out, on_path, limit);
            out.push(')');
        }
    }
    on_path.pop();
}

fn state_suffix(
    graph: &ValueGraph,
    extra: &crate::Extra,
    out: &mut String,
    on_path: &mut Vec<ValueId>,
    limit: usize,
) {
    if let Some(state) = extra.state {
        out.push_str(" with state ");
        repr_into(graph, state, out, on_path, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_table() {
        for (x, expected) in [
            (0.0, "0.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1.2345e-4, "0.00012345"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-1.5e20, "-1.5e+20"),
        ] {
            assert_eq!(python_float_repr(x), expected, "{x}");
        }
    }
}
