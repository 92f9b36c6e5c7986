//! The pickle codec against CPython's own `pickle`, both directions:
//! values CPython pickles in protocols 0 to 5 decode in tpkg to the same
//! value image, and values tpkg encodes in protocols 2 to 5 load in CPython
//! to the same value image.

use num_bigint::BigInt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::Value as Json;
use tpkg::pickle::{PyStr, Value, ValueGraph, ValueId, decode, encode};
use tpkg::show::image;
use tpkg_tests::oracle;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn cpython_pickles_of_every_protocol_decode_to_the_same_value() {
    let generated = oracle::run_json("pickle_oracle.py", &["generate", "20261129", "400"]).unwrap();
    let mut decoded = 0;
    for case in generated.as_array().unwrap() {
        for protocol in 0..=5 {
            let data = unhex(case["pickles"][protocol.to_string()].as_str().unwrap());
            let graph = decode(&data)
                .unwrap_or_else(|e| panic!("protocol {protocol}: {e}\nexpected {}", case["image"]));
            assert_eq!(
                image(&graph).unwrap(),
                case["image"],
                "protocol {protocol}: pickle {}",
                hex(&data)
            );
            decoded += 1;
        }
    }
    assert_eq!(decoded, 2400);
}

/// A generated value, built into a graph afterwards.
#[derive(Debug, Clone)]
enum Gen {
    None,
    Bool(bool),
    Int(i64),
    Big(i32, u8),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    ByteArray(Vec<u8>),
    Complex(i8, i8),
    Dtype(&'static str),
    Size(Vec<u16>),
    Device(Option<u8>),
    Tuple(Vec<Gen>),
    List(Vec<Gen>),
    Dict(Vec<(String, Gen)>),
    IntDict(Vec<(i32, Gen)>),
    Ordered(Vec<(String, Gen)>),
    Set(Vec<i32>),
    FrozenSet(Vec<String>),
    /// The same value referenced twice.
    Shared(Box<Gen>),
    /// A list that contains itself.
    SelfList(Box<Gen>),
}

fn leaf() -> impl Strategy<Value = Gen> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Gen::None),
        any::<bool>().prop_map(Gen::Bool),
        any::<i64>().prop_map(Gen::Int),
        (-300i64..70_000).prop_map(Gen::Int),
        (any::<i32>(), 0u8..200).prop_map(|(m, s)| Gen::Big(m, s)),
        any::<f64>().prop_map(Gen::Float),
        prop::sample::select(vec![0.0, -0.0, 1e16, 1e-5, f64::INFINITY, 0.1]).prop_map(Gen::Float),
        "\\PC{0,12}".prop_map(Gen::Str),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Gen::Bytes),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Gen::ByteArray),
        (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Gen::Complex(a, b)),
        prop::sample::select(vec!["float16", "int64", "bfloat16", "bool"]).prop_map(Gen::Dtype),
        prop::collection::vec(0u16..500, 0..4).prop_map(Gen::Size),
        prop::option::of(0u8..4).prop_map(Gen::Device),
    ]
}

fn gen_value() -> impl Strategy<Value = Gen> {
    use proptest::prelude::*;
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Gen::Tuple),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Gen::List),
            prop::collection::btree_map("[a-z]{0,4}", inner.clone(), 0..5)
                .prop_map(|m| Gen::Dict(m.into_iter().collect())),
            prop::collection::btree_map(any::<i32>(), inner.clone(), 0..4)
                .prop_map(|m| Gen::IntDict(m.into_iter().collect())),
            prop::collection::btree_map("[a-z]{1,4}", inner.clone(), 0..4)
                .prop_map(|m| Gen::Ordered(m.into_iter().collect())),
            prop::collection::btree_set(any::<i32>(), 0..5)
                .prop_map(|s| Gen::Set(s.into_iter().collect())),
            prop::collection::btree_set("[a-z]{0,3}", 0..4)
                .prop_map(|s| Gen::FrozenSet(s.into_iter().collect())),
            inner.clone().prop_map(|g| Gen::Shared(Box::new(g))),
            inner.prop_map(|g| Gen::SelfList(Box::new(g))),
        ]
    })
}

fn build(graph: &mut ValueGraph, generated: &Gen) -> ValueId {
    let add_all = |graph: &mut ValueGraph, items: &[Gen]| -> Vec<ValueId> {
        items.iter().map(|g| build(graph, g)).collect()
    };
    let str_value = |text: &str| Value::Str(PyStr::from(text));
    match generated {
        Gen::None => graph.add(Value::None),
        Gen::Bool(b) => graph.add(Value::Bool(*b)),
        Gen::Int(i) => graph.add(Value::Int(*i)),
        Gen::Big(mantissa, shift) => {
            let big = BigInt::from(*mantissa) << usize::from(*shift);
            match i64::try_from(&big) {
                Ok(small) => graph.add(Value::Int(small)),
                Err(_) => graph.add(Value::BigInt(big)),
            }
        }
        Gen::Float(x) => graph.add(Value::Float(*x)),
        Gen::Str(text) => graph.add(str_value(text)),
        Gen::Bytes(bytes) => graph.add(Value::Bytes(bytes.clone())),
        Gen::ByteArray(bytes) => graph.add(Value::ByteArray(bytes.clone())),
        Gen::Complex(re, im) => graph.add(Value::Complex(f64::from(*re), f64::from(*im))),
        Gen::Dtype(name) => graph.add(Value::TorchDtype((*name).to_owned())),
        Gen::Size(dims) => {
            let dims = dims
                .iter()
                .map(|d| graph.add(Value::Int(i64::from(*d))))
                .collect();
            graph.add(Value::TorchSize(dims))
        }
        Gen::Device(None) => graph.add(Value::TorchDevice("cpu".to_owned())),
        Gen::Device(Some(i)) => graph.add(Value::TorchDevice(format!("cuda:{i}"))),
        Gen::Tuple(items) => {
            let items = add_all(graph, items);
            graph.add(Value::Tuple(items))
        }
        Gen::List(items) => {
            let items = add_all(graph, items);
            graph.add(Value::List(items))
        }
        Gen::Dict(pairs) | Gen::Ordered(pairs) => {
            let items = pairs
                .iter()
                .map(|(k, v)| (graph.add(str_value(k)), build(graph, v)))
                .collect();
            if matches!(generated, Gen::Dict(_)) {
                graph.add(Value::Dict(items))
            } else {
                graph.add(Value::OrderedDict { items, state: None })
            }
        }
        Gen::IntDict(pairs) => {
            let items = pairs
                .iter()
                .map(|(k, v)| (graph.add(Value::Int(i64::from(*k))), build(graph, v)))
                .collect();
            graph.add(Value::Dict(items))
        }
        Gen::Set(members) => {
            let members = members
                .iter()
                .map(|m| graph.add(Value::Int(i64::from(*m))))
                .collect();
            graph.add(Value::Set(members))
        }
        Gen::FrozenSet(members) => {
            let members = members.iter().map(|m| graph.add(str_value(m))).collect();
            graph.add(Value::FrozenSet(members))
        }
        Gen::Shared(inner) => {
            let shared = build(graph, inner);
            graph.add(Value::List(vec![shared, shared]))
        }
        Gen::SelfList(inner) => {
            let item = build(graph, inner);
            let list = graph.add(Value::List(vec![item]));
            if let Value::List(items) = graph.get_mut(list) {
                items.push(list);
            }
            list
        }
    }
}

#[test]
fn tpkg_pickles_load_in_cpython_as_the_same_value() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = gen_value();
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..300 {
        let generated = strategy.new_tree(&mut runner).unwrap().current();
        let mut graph = ValueGraph::new(Value::None);
        let root = build(&mut graph, &generated);
        graph.set_root(root);
        let image = image(&graph).unwrap();
        for protocol in 2..=5 {
            let data = encode(&graph, protocol).unwrap();
            // tpkg reads its own output back to the same image, too.
            assert_eq!(tpkg::show::image(&decode(&data).unwrap()).unwrap(), image);
            requests.push(Json::from(hex(&data)));
            expected.push((protocol, image.clone(), generated.clone()));
        }
    }
    let loaded =
        oracle::run_json_stdin("pickle_oracle.py", &["load"], &Json::from(requests)).unwrap();
    let loaded = loaded.as_array().unwrap();
    assert_eq!(loaded.len(), expected.len());
    for ((protocol, image, generated), theirs) in expected.iter().zip(loaded) {
        assert_eq!(theirs, image, "protocol {protocol}: {generated:?}");
    }
}
