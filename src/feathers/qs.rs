//! Query-string parsing with the semantics of `qs.parse` (what Feathers' Koa and
//! Express transports use): `a[b]=1` nests, `a[]=x` and `a[0]=x` make arrays,
//! `a=1&a=2` makes an array, nesting stops at depth 5 (the rest of the key stays a
//! literal), and every value is a string. The typed meaning comes later, from the
//! service's schema.

use super::error::{FeathersError, Result};
use serde_json::{Map, Value};

/// qs' default nesting depth.
const MAX_DEPTH: usize = 5;
/// More parameters than this is refused (qs silently drops them; we say so).
const MAX_PARAMETERS: usize = 1000;
/// Highest array index accepted in `a[N]=x` (qs stops at 20; Express allows 1000).
const MAX_INDEX: usize = 10_000;

#[derive(Debug)]
enum Segment {
    Key(String),
    Push,
}

#[derive(Debug)]
enum Node {
    Leaf(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// Parses a raw (still percent-encoded) query string into a JSON object of strings.
pub fn parse(raw: &str) -> Result<Value> {
    let mut root: Vec<(String, Node)> = Vec::new();
    for (count, (key, value)) in form_urlencoded::parse(raw.as_bytes()).enumerate() {
        if count >= MAX_PARAMETERS {
            return Err(FeathersError::bad_request(format!(
                "Too many query parameters (at most {MAX_PARAMETERS})"
            )));
        }
        if key.is_empty() {
            continue;
        }
        let (parent, segments) = split_key(&key);
        insert(&mut root, parent, &segments, value.into_owned());
    }
    Ok(Value::Object(
        root.into_iter()
            .map(|(k, n)| (k, into_value(n)))
            .collect::<Map<_, _>>(),
    ))
}

/// `a[b][]` → ("a", [Key(b), Push]); segments past the depth limit stay one literal key.
fn split_key(key: &str) -> (String, Vec<Segment>) {
    let Some(open) = key.find('[').filter(|&i| i > 0) else {
        return (key.to_string(), Vec::new());
    };
    let parent = key[..open].to_string();
    let mut segments = Vec::new();
    let mut rest = &key[open..];
    while rest.starts_with('[') && segments.len() < MAX_DEPTH {
        let Some(close) = rest.find(']') else { break };
        let inner = &rest[1..close];
        segments.push(if inner.is_empty() {
            Segment::Push
        } else {
            Segment::Key(inner.to_string())
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Key(rest.to_string()));
    }
    (parent, segments)
}

fn insert(map: &mut Vec<(String, Node)>, key: String, segments: &[Segment], value: String) {
    let pos = match map.iter().position(|(k, _)| *k == key) {
        Some(pos) => pos,
        None => {
            map.push((key, empty_for(segments)));
            map.len() - 1
        }
    };
    insert_node(&mut map[pos].1, segments, value);
}

fn empty_for(segments: &[Segment]) -> Node {
    match segments.first() {
        None => Node::List(Vec::new()),
        Some(Segment::Push) => Node::List(Vec::new()),
        Some(Segment::Key(_)) => Node::Map(Vec::new()),
    }
}

fn insert_node(node: &mut Node, segments: &[Segment], value: String) {
    match segments.split_first() {
        None => match node {
            // A first plain value, or a repeated key: collect; unwrapped to a scalar when single.
            Node::List(items) => items.push(Node::Leaf(value)),
            Node::Leaf(prev) => {
                let prev = std::mem::take(prev);
                *node = Node::List(vec![Node::Leaf(prev), Node::Leaf(value)]);
            }
            Node::Map(entries) => {
                let index = entries.len().to_string();
                entries.push((index, Node::Leaf(value)));
            }
        },
        Some((Segment::Push, rest)) => {
            if let Node::Leaf(prev) = node {
                let prev = std::mem::take(prev);
                *node = Node::List(vec![Node::Leaf(prev)]);
            }
            match node {
                Node::List(items) => {
                    let mut child = empty_for(rest);
                    insert_node(&mut child, rest, value);
                    items.push(child);
                }
                Node::Map(entries) => {
                    let index = entries.len().to_string();
                    let mut child = empty_for(rest);
                    insert_node(&mut child, rest, value);
                    entries.push((index, child));
                }
                Node::Leaf(_) => unreachable!("converted above"),
            }
        }
        Some((Segment::Key(key), rest)) => {
            if let Node::List(items) = node {
                let entries = std::mem::take(items)
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (i.to_string(), n))
                    .collect();
                *node = Node::Map(entries);
            }
            if let Node::Leaf(prev) = node {
                let prev = std::mem::take(prev);
                *node = Node::Map(vec![("0".to_string(), Node::Leaf(prev))]);
            }
            if let Node::Map(entries) = node {
                insert(entries, key.clone(), rest, value);
            }
        }
    }
}

fn into_value(node: Node) -> Value {
    match node {
        Node::Leaf(s) => Value::String(s),
        Node::List(mut items) if items.len() == 1 && matches!(items[0], Node::Leaf(_)) => {
            // `a=1` is the scalar "1", not ["1"]; only `a[]=1` stays an array.
            into_value(items.remove(0))
        }
        Node::List(items) => Value::Array(items.into_iter().map(into_value).collect()),
        Node::Map(entries) => {
            let indices: Option<Vec<usize>> = entries
                .iter()
                .map(|(k, _)| k.parse::<usize>().ok().filter(|i| *i <= MAX_INDEX))
                .collect();
            match indices {
                Some(indices) if !entries.is_empty() => {
                    let mut indexed: Vec<(usize, Node)> = indices
                        .into_iter()
                        .zip(entries.into_iter().map(|(_, n)| n))
                        .collect();
                    indexed.sort_by_key(|(i, _)| *i);
                    Value::Array(indexed.into_iter().map(|(_, n)| into_value(n)).collect())
                }
                _ => Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, n)| (k, into_value(n)))
                        .collect(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn qs_shapes_match_feathers() {
        let cases = [
            ("$limit=10&$skip=0", json!({"$limit":"10","$skip":"0"})),
            ("$sort[createdAt]=-1", json!({"$sort":{"createdAt":"-1"}})),
            (
                "status[$in][]=open&status[$in][]=closed",
                json!({"status":{"$in":["open","closed"]}}),
            ),
            ("status[$in][0]=open", json!({"status":{"$in":["open"]}})),
            ("status[$in]=open", json!({"status":{"$in":"open"}})),
            (
                "$or[0][a]=1&$or[1][b][$gt]=2",
                json!({"$or":[{"a":"1"},{"b":{"$gt":"2"}}]}),
            ),
            (
                "$select[]=name&$select[]=id",
                json!({"$select":["name","id"]}),
            ),
            ("a=1&a=2", json!({"a":["1","2"]})),
            ("flag&empty=", json!({"flag":"","empty":""})),
            ("a.b=1", json!({"a.b":"1"})),
            ("%24sort%5Bname%5D=1", json!({"$sort":{"name":"1"}})),
            ("name=a+b%25", json!({"name":"a b%"})),
            (
                "$and[0][$or][0][b][c][d][e]=1",
                json!({"$and":[{"$or":[{"b":{"c":{"[d][e]":"1"}}}]}]}),
            ),
            ("a[1]=y&a[0]=x", json!({"a":["x","y"]})),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input).unwrap(), expected, "parsing {input}");
        }
    }

    #[test]
    fn sort_keys_keep_their_order() {
        let parsed = parse("$sort[b]=1&$sort[a]=-1").unwrap();
        let keys: Vec<_> = parsed["$sort"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn many_array_items_stay_an_array() {
        let qs: Vec<String> = (0..30).map(|i| format!("id[$in][{i}]={i}")).collect();
        let parsed = parse(&qs.join("&")).unwrap();
        assert_eq!(parsed["id"]["$in"].as_array().unwrap().len(), 30);
    }

    #[test]
    fn too_many_parameters_is_a_bad_request() {
        let qs: Vec<String> = (0..1001).map(|i| format!("k{i}=1")).collect();
        assert_eq!(parse(&qs.join("&")).unwrap_err().code(), 400);
    }
}
