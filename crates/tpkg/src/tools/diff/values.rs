//! Value images compared: where two main objects' values differ outside
//! their tensors.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::{MAX_VALUE_DIFFERENCES, ValueDifference};
use crate::formats::{FileFormat, PyTorchFile};
use crate::tensors::PackageTensors;

/// The main object's value image (tensors as `{"tensor": path}`), or
/// `None` for a `.pt2` archive, whose main object is its tensors alone. A
/// pickle file of several pickles is the list of their images, tensor
/// paths prefixed by the pickle's index as [`PackageTensors::from_pickles`]
/// gives them.
pub(super) fn value_image(
    file: &PyTorchFile,
    tensors: &PackageTensors<'_>,
) -> Option<Result<Json, crate::show::ShowError>> {
    match file {
        PyTorchFile::Zip {
            format: FileFormat::Pt2,
            ..
        } => None,
        PyTorchFile::Pickle(pickles) if pickles.len() != 1 => Some(
            pickles
                .iter()
                .enumerate()
                .map(|(index, graph)| {
                    let mut image = crate::show::image(graph)?;
                    prefix_tensor_paths(&mut image, &index.to_string());
                    Ok(image)
                })
                .collect::<Result<Vec<Json>, _>>()
                .map(Json::Array),
        ),
        _ => Some(crate::show::image(tensors.graph())),
    }
}

/// Rewrites every `{"tensor": path}` of an image to `{"tensor":
/// "prefix.path"}` (`prefix` alone for an empty path).
fn prefix_tensor_paths(image: &mut Json, prefix: &str) {
    let mut stack = vec![image];
    while let Some(value) = stack.pop() {
        match value {
            Json::Object(map) => {
                if map.len() == 1
                    && let Some(Json::String(path)) = map.get_mut("tensor")
                {
                    *path = if path.is_empty() {
                        prefix.to_owned()
                    } else {
                        format!("{prefix}.{path}")
                    };
                    continue;
                }
                stack.extend(map.values_mut());
            }
            Json::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// Compact JSON of an image, cut at 120 characters.
fn compact(value: &Json) -> String {
    const LIMIT: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

const ABSENT: &str = "(absent)";

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The one key of a one-key JSON object, with its value.
fn tagged(value: &Json) -> Option<(&str, &Json)> {
    match value {
        Json::Object(map) if map.len() == 1 => map.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// Whether a value image is a tensor (`{"tensor": path}`), or absent.
fn tensor_or_absent(value: Option<&Json>) -> bool {
    value.is_none_or(|value| tagged(value).is_some_and(|(kind, _)| kind == "tensor"))
}

/// Where images `a` and `b` differ, walking dicts by key and sequences by
/// index, up to [`MAX_VALUE_DIFFERENCES`] places. A place holding a tensor
/// on one side and a tensor or nothing on the other is not a difference of
/// values (tensors are compared by path on their own). Iterative: images
/// may be as deep as [`crate::show::MAX_DEPTH`].
pub(super) fn value_differences(a: &Json, b: &Json, path: &str, out: &mut Vec<ValueDifference>) {
    let mut stack: Vec<(Option<&Json>, Option<&Json>, String)> =
        vec![(Some(a), Some(b), path.to_owned())];
    while let Some((a, b, path)) = stack.pop() {
        if out.len() >= MAX_VALUE_DIFFERENCES {
            return;
        }
        if tensor_or_absent(a) && tensor_or_absent(b) {
            continue;
        }
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                out.push(ValueDifference {
                    path,
                    a: a.map_or_else(|| ABSENT.to_owned(), compact),
                    b: b.map_or_else(|| ABSENT.to_owned(), compact),
                });
                continue;
            }
        };
        let mut children: Vec<(Option<&Json>, Option<&Json>, String)> = Vec::new();
        let walked = match (a, b, tagged(a), tagged(b)) {
            (Json::Array(x), Json::Array(y), _, _) => {
                sequence(x, y, &path, &mut children);
                true
            }
            (_, _, Some((kind_a, x)), Some((kind_b, y))) if kind_a == kind_b => {
                match (kind_a, x, y) {
                    ("dict" | "OrderedDict", Json::Array(x), Json::Array(y)) => {
                        pairs(x, y, &path, &mut children, out)
                    }
                    (_, Json::Array(x), Json::Array(y)) => {
                        sequence(x, y, &path, &mut children);
                        true
                    }
                    _ => false,
                }
            }
            _ => match (a, b) {
                // A module: its class, then its state dict.
                (Json::Object(x), Json::Object(y))
                    if x.contains_key("module") && x.get("module") == y.get("module") =>
                {
                    children.push((x.get("state_dict"), y.get("state_dict"), path.clone()));
                    true
                }
                _ => false,
            },
        };
        if walked {
            stack.extend(children.into_iter().rev());
        } else {
            out.push(ValueDifference {
                path,
                a: compact(a),
                b: compact(b),
            });
        }
    }
}

fn sequence<'j>(
    a: &'j [Json],
    b: &'j [Json],
    path: &str,
    children: &mut Vec<(Option<&'j Json>, Option<&'j Json>, String)>,
) {
    for index in 0..a.len().max(b.len()) {
        children.push((a.get(index), b.get(index), join(path, &index.to_string())));
    }
}

/// A dict's `[key, value]` pairs matched by key; `false` when they are not
/// pairs with string keys (then the dict is one difference). Same items in
/// another order are a difference of their own.
fn pairs<'j>(
    a: &'j [Json],
    b: &'j [Json],
    path: &str,
    children: &mut Vec<(Option<&'j Json>, Option<&'j Json>, String)>,
    out: &mut Vec<ValueDifference>,
) -> bool {
    fn items(pairs: &[Json]) -> Option<Vec<(&str, &Json)>> {
        pairs
            .iter()
            .map(|pair| match pair.as_array()?.as_slice() {
                [Json::String(key), value] => Some((key.as_str(), value)),
                _ => None,
            })
            .collect()
    }
    let (Some(x), Some(y)) = (items(a), items(b)) else {
        return false;
    };
    let by_key: HashMap<&str, &Json> = y.iter().copied().collect();
    let in_a: HashMap<&str, &Json> = x.iter().copied().collect();
    if in_a.len() != x.len() || by_key.len() != y.len() {
        // Keys that print alike (`1` and `'1'`): no matching by key.
        return false;
    }
    for (key, value) in &x {
        children.push((Some(value), by_key.get(key).copied(), join(path, key)));
    }
    for (key, value) in &y {
        if !in_a.contains_key(key) {
            children.push((None, Some(value), join(path, key)));
        }
    }
    let order = |items: &[(&'j str, &'j Json)], other: &HashMap<&str, &Json>| -> Vec<&'j str> {
        items
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| other.contains_key(k))
            .collect()
    };
    let (order_a, order_b) = (order(&x, &by_key), order(&y, &in_a));
    if order_a != order_b {
        let keys = |order: Vec<&str>| format!("key order {}", compact(&Json::from(order)));
        out.push(ValueDifference {
            path: path.to_owned(),
            a: keys(order_a),
            b: keys(order_b),
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn places(a: Json, b: Json) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        value_differences(&a, &b, "", &mut out);
        out.into_iter().map(|d| (d.path, d.a, d.b)).collect()
    }

    fn place(path: &str, a: &str, b: &str) -> (String, String, String) {
        (path.to_owned(), a.to_owned(), b.to_owned())
    }

    #[test]
    fn value_differences_name_dict_keys_and_indices() {
        let a = json!({"dict": [["epoch", 3], ["sizes", {"tuple": [1, 2]}], ["gone", null]]});
        let b = json!({"dict": [["epoch", 4], ["sizes", {"tuple": [1, 5, 6]}], ["new", true]]});
        assert_eq!(
            places(a, b),
            [
                place("epoch", "3", "4"),
                place("sizes.1", "2", "5"),
                place("sizes.2", ABSENT, "6"),
                place("gone", "null", ABSENT),
                place("new", ABSENT, "true"),
            ]
        );
    }

    #[test]
    fn tensors_are_not_value_differences_but_their_neighbours_are() {
        let a = json!({"OrderedDict": [["w", {"tensor": "w"}], ["n", 1]]});
        let b = json!({"OrderedDict": [["v", {"tensor": "v"}], ["n", 1]]});
        assert_eq!(places(a, b), []);
        // A tensor where the other side has a plain value is one.
        let a = json!([{"tensor": "0"}]);
        let b = json!([7]);
        assert_eq!(places(a, b), [place("0", r#"{"tensor":"0"}"#, "7")]);
    }

    #[test]
    fn other_kinds_order_and_classes_differ_as_a_whole() {
        assert_eq!(
            places(json!({"dict": []}), json!({"OrderedDict": []})),
            [place("", r#"{"dict":[]}"#, r#"{"OrderedDict":[]}"#)]
        );
        assert_eq!(
            places(
                json!({"dict": [["a", 1], ["b", 2]]}),
                json!({"dict": [["b", 2], ["a", 1]]})
            ),
            [place(
                "",
                r#"key order ["a","b"]"#,
                r#"key order ["b","a"]"#
            )]
        );
        let module = |class: &str, n: i64| json!({"module": class, "state_dict": {"OrderedDict": [["k", n]]}});
        assert_eq!(
            places(module("m.A", 1), module("m.A", 2)),
            [place("k", "1", "2")]
        );
        assert_eq!(places(module("m.A", 1), module("m.B", 1)).len(), 1);
    }

    #[test]
    fn several_pickles_prefix_their_tensor_paths() {
        let mut image = json!({"dict": [["a", {"tensor": "a"}]], "x": [{"tensor": ""}]});
        prefix_tensor_paths(&mut image, "1");
        assert_eq!(
            image,
            json!({"dict": [["a", {"tensor": "1.a"}]], "x": [{"tensor": "1"}]})
        );
    }
}
