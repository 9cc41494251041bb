//! `{{placeholder}}` rendering for canned replies: every placeholder must be known
//! and have a value, else a 422 that lists the unknown and the missing ones.

use crate::feathers::FeathersError;
use serde_json::json;
use std::collections::BTreeMap;

/// Values by placeholder name; `None` = known but empty (e.g. a contact without a first name).
pub type Values = BTreeMap<String, Option<String>>;

/// The placeholders of `template`, in order, trimmed (`{{ contact.first_name }}` works).
fn placeholders(template: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = template[from..].find("{{").map(|i| i + from) {
        let Some(end) = template[start + 2..].find("}}").map(|i| i + start + 2) else {
            break;
        };
        out.push((start, end + 2, template[start + 2..end].trim().to_string()));
        from = end + 2;
    }
    out
}

/// Renders `template`; 422 `{rule: "placeholders", unknown: [...], missing: [...]}` otherwise.
pub fn render(template: &str, values: &Values) -> Result<String, FeathersError> {
    let found = placeholders(template);
    let unknown: Vec<&str> = found
        .iter()
        .filter(|(_, _, n)| !values.contains_key(n))
        .map(|(_, _, n)| n.as_str())
        .collect();
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, _, n)| matches!(values.get(n), Some(None)))
        .map(|(_, _, n)| n.as_str())
        .collect();
    if !unknown.is_empty() || !missing.is_empty() {
        return Err(
            FeathersError::unprocessable("The message has placeholders without a value").with_data(
                json!({ "rule": "placeholders", "unknown": unknown, "missing": missing }),
            ),
        );
    }
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for (start, end, name) in found {
        out.push_str(&template[last..start]);
        out.push_str(values[&name].as_deref().unwrap_or_default());
        last = end;
    }
    out.push_str(&template[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::from([
            ("contact.first_name".to_string(), Some("Ada".to_string())),
            ("contact.last_name".to_string(), None),
            ("order".to_string(), Some("#42".to_string())),
        ])
    }

    #[test]
    fn renders_known_placeholders() {
        assert_eq!(
            render("Hi {{contact.first_name}}, order {{ order }}!", &values()).unwrap(),
            "Hi Ada, order #42!"
        );
        assert_eq!(
            render("no placeholders", &values()).unwrap(),
            "no placeholders"
        );
        assert_eq!(
            render("unclosed {{ brace", &values()).unwrap(),
            "unclosed {{ brace"
        );
    }

    #[test]
    fn lists_unknown_and_missing() {
        let err = render("{{contact.last_name}} {{nope}} {{x}}", &values()).unwrap_err();
        assert_eq!(err.code(), 422);
        let data = err.data.unwrap();
        assert_eq!(data["unknown"], json!(["nope", "x"]));
        assert_eq!(data["missing"], json!(["contact.last_name"]));
    }
}
