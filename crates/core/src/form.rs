//! Pre-chat forms: the fields a queue asks seekers to fill in, and checking the answers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    /// The answer's key: `[a-z0-9_-]`, 1–40 characters.
    pub name: String,
    pub label: String,
    /// `text`, `email`, `textarea` or `select`.
    #[serde(default = "text_kind")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// The choices of a `select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn text_kind() -> String {
    "text".into()
}

pub const KINDS: [&str; 4] = ["text", "email", "textarea", "select"];
pub const MAX_FIELDS: usize = 20;
pub const MAX_ANSWER_CHARS: usize = 500;

/// A canned response an expert can insert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    pub title: String,
    pub text: String,
}

/// Check a form definition.
pub fn validate_fields(fields: &[FormField]) -> Result<(), String> {
    if fields.len() > MAX_FIELDS {
        return Err(format!("a form has at most {MAX_FIELDS} fields"));
    }
    for (i, f) in fields.iter().enumerate() {
        let good_name = !f.name.is_empty()
            && f.name.len() <= 40
            && f.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !good_name {
            return Err(format!("form field names are 1–40 of a-z, 0-9, _ and - (got {:?})", f.name));
        }
        if fields[..i].iter().any(|g| g.name == f.name) {
            return Err(format!("form field {:?} appears twice", f.name));
        }
        if !KINDS.contains(&f.kind.as_str()) {
            return Err(format!("form field {:?}: kind must be one of {}", f.name, KINDS.join(", ")));
        }
        if f.kind == "select" && f.options.is_empty() {
            return Err(format!("form field {:?}: a select needs options", f.name));
        }
        if f.kind != "select" && !f.options.is_empty() {
            return Err(format!("form field {:?}: only a select has options", f.name));
        }
        if f.label.chars().count() > 200 || f.options.iter().any(|o| o.chars().count() > 200) {
            return Err(format!("form field {:?}: labels and options have at most 200 characters", f.name));
        }
    }
    Ok(())
}

/// Check a seeker's answers against the form. Returns them in the form's order, trimmed,
/// empty ones left out. The message names the field, for the seeker.
pub fn check_answers(fields: &[FormField], answers: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    for (name, _) in answers {
        if !fields.iter().any(|f| &f.name == name) {
            return Err(format!("this queue's form has no field {name:?}"));
        }
    }
    let mut out = Vec::new();
    for f in fields {
        let value = answers.iter().find(|(n, _)| n == &f.name).map(|(_, v)| v.trim()).unwrap_or("");
        let label = if f.label.is_empty() { &f.name } else { &f.label };
        if value.is_empty() {
            if f.required {
                return Err(format!("{label} is required"));
            }
            continue;
        }
        if value.chars().count() > MAX_ANSWER_CHARS {
            return Err(format!("{label} has at most {MAX_ANSWER_CHARS} characters"));
        }
        if f.kind == "email" && !looks_like_email(value) {
            return Err(format!("{label} must be an e-mail address"));
        }
        if f.kind == "select" && !f.options.iter().any(|o| o == value) {
            return Err(format!("{label} must be one of: {}", f.options.join(", ")));
        }
        out.push((f.name.clone(), value.to_string()));
    }
    Ok(out)
}

/// `local@domain.tld`, no spaces: enough to catch typing mistakes.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Vec<FormField> {
        vec![
            FormField {
                name: "email".into(),
                label: "E-mail".into(),
                kind: "email".into(),
                required: true,
                options: vec![],
            },
            FormField {
                name: "product".into(),
                label: "Product".into(),
                kind: "select".into(),
                required: false,
                options: vec!["VPN".into(), "Mail".into()],
            },
        ]
    }

    #[test]
    fn answers_are_checked_and_ordered() {
        let f = form();
        validate_fields(&f).unwrap();
        let a = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(
            check_answers(&f, &a(&[("product", "VPN"), ("email", " bob@example.com ")])).unwrap(),
            a(&[("email", "bob@example.com"), ("product", "VPN")])
        );
        assert_eq!(check_answers(&f, &a(&[("email", "bob@example.com"), ("product", "")])).unwrap().len(), 1);
        assert_eq!(check_answers(&f, &a(&[])).unwrap_err(), "E-mail is required");
        assert!(check_answers(&f, &a(&[("email", "bob")])).unwrap_err().contains("e-mail address"));
        assert!(check_answers(&f, &a(&[("email", "b@x.io"), ("product", "Fax")])).unwrap_err().contains("one of"));
        assert!(check_answers(&f, &a(&[("email", "b@x.io"), ("shoe", "42")])).unwrap_err().contains("no field"));
        let long = "x".repeat(501);
        assert!(check_answers(&f, &a(&[("email", "b@x.io"), ("product", &long)])).unwrap_err().contains("at most"));
    }

    #[test]
    fn bad_forms_are_refused() {
        let mut f = form();
        f[1].options.clear();
        assert!(validate_fields(&f).unwrap_err().contains("needs options"));
        let mut f = form();
        f[0].name = "E Mail".into();
        assert!(validate_fields(&f).is_err());
        let mut f = form();
        f[1].name = "email".into();
        assert!(validate_fields(&f).unwrap_err().contains("twice"));
        let mut f = form();
        f[0].kind = "date".into();
        assert!(validate_fields(&f).unwrap_err().contains("kind"));
    }
}
