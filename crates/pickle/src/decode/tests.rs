use num_bigint::BigInt;

use super::*;
use crate::Opcode;
use crate::value::PyStr;

fn root(data: &[u8]) -> (ValueGraph, Value) {
    let graph = decode(data).unwrap();
    let value = graph.get(graph.root()).clone();
    (graph, value)
}

#[test]
fn scalars_table() {
    let cases: Vec<(&[u8], Value)> = vec![
        (b"N.", Value::None),
        (b"\x88.", Value::Bool(true)),
        (b"I01\n.", Value::Bool(true)),
        (b"I00\n.", Value::Bool(false)),
        (b"I-42\n.", Value::Int(-42)),
        (b"K\xff.", Value::Int(255)),
        (b"M\x00\x01.", Value::Int(256)),
        (b"J\xff\xff\xff\xff.", Value::Int(-1)),
        (b"\x8a\x00.", Value::Int(0)),
        (b"\x8a\x01\x80.", Value::Int(-128)),
        (b"L123L\n.", Value::Int(123)),
        (b"F1.5\n.", Value::Float(1.5)),
        (b"G?\xf8\x00\x00\x00\x00\x00\x00.", Value::Float(1.5)),
        (b"X\x02\x00\x00\x00hi.", Value::Str(PyStr::from("hi"))),
        (b"Vcaf\xe9\n.", Value::Str(PyStr::from("café"))),
        (b"S'a\\nb'\n.", Value::Str(PyStr::from("a\nb"))),
        (b"C\x02ab.", Value::Bytes(b"ab".to_vec())),
        (
            b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z.",
            Value::ByteArray(b"z".to_vec()),
        ),
        (
            b"ctorch\nfloat16\n.",
            Value::TorchDtype("float16".to_owned()),
        ),
    ];
    for (data, expected) in cases {
        assert_eq!(root(data).1, expected, "{data:?}");
    }
}

#[test]
fn big_ints() {
    // 2**100 in LONG1 (protocol 2).
    let mut data = vec![Opcode::LONG1.byte(), 13];
    data.extend_from_slice(&[0; 12]);
    data.push(0x10);
    data.push(Opcode::STOP.byte());
    let (_, value) = root(&data);
    assert_eq!(value, Value::BigInt(BigInt::from(1) << 100));
}

#[test]
fn shared_references_stay_shared_and_cycles_work() {
    // x = [1]; pickle.dumps([x, x], 2)
    let (graph, value) = root(b"\x80\x02]q\x00(]q\x01K\x01ah\x01e.");
    let Value::List(items) = value else { panic!() };
    assert_eq!(items[0], items[1]);
    let Value::List(inner) = graph.get(items[0]) else {
        panic!()
    };
    assert_eq!(graph.get(inner[0]), &Value::Int(1));
    // a = []; a.append(a); pickle.dumps(a, 2)
    let (graph, value) = root(b"\x80\x02]q\x00h\x00a.");
    let Value::List(items) = value else { panic!() };
    assert_eq!(items, vec![graph.root()]);
}

#[test]
fn malformed_inputs_are_typed_errors_with_offsets() {
    let cases: Vec<(&[u8], usize, &str)> = vec![
        (b"", 0, "without a STOP"),
        (b"\x80\x02", 2, "without a STOP"),
        (b"K", 0, "BININT1 needs 1"),
        (b"X\xff\xff\xff\x7f", 0, "BINUNICODE needs"),
        (b"\xff.", 0, "unknown opcode 0xff"),
        (b"\x80\x06N.", 0, "unsupported pickle protocol 6"),
        (b"a.", 0, "APPEND needs more values"),
        (b"(a.", 1, "APPEND needs more values"),
        (b"e.", 0, "APPENDS needs a MARK"),
        (b"h\x05.", 0, "memo entry 5"),
        (b"X\x01\x00\x00\x00\xff.", 0, "not UTF-8"),
        (b"NK\x01a.", 3, "APPEND needs a list"),
        (b"\x82\x01.", 0, "extension code 1"),
        (b"\x97.", 0, "NEXT_BUFFER"),
        (b"Ixyz\n.", 0, "invalid int literal"),
        (b".", 0, "STOP needs more values"),
    ];
    for (data, offset, message) in cases {
        let error = decode(data).unwrap_err();
        assert_eq!(error.offset(), offset, "{data:?}: {error}");
        assert!(error.to_string().contains(message), "{data:?}: {error}");
    }
}

#[test]
fn limits_are_enforced() {
    let deep = [b'('; 20];
    let options = DecodeOptions {
        max_mark_depth: 10,
        ..DecodeOptions::default()
    };
    let error = decode_with(&deep, &options, &TorchData).unwrap_err();
    assert_eq!(error.offset(), 10);
    let digits = format!("I{}\n.", "9".repeat(5000));
    assert!(
        decode(digits.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("limit")
    );
}
