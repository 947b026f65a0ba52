//! The checks handlers share for bad input: each adds a named [`InvalidParam`] for what is
//! wrong, so a request is refused once, listing every bad field ([`checked`]).

use crate::problem::{InvalidParam, Problem, codes};

/// A short id: 1 to 50 of `a-z`, `0-9`, `-`.
pub fn slug(name: &str, value: &str, params: &mut Vec<InvalidParam>) {
    let ok = !value.is_empty()
        && value.len() <= 50
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        params.push(InvalidParam::new(name, "must be 1 to 50 of a-z, 0-9 and -"));
    }
}

/// A text of 1 to `max` characters (or 0 to `max` when not `required`).
pub fn text(name: &str, value: &str, max: usize, required: bool, params: &mut Vec<InvalidParam>) {
    let n = value.chars().count();
    if (required && value.trim().is_empty()) || n > max {
        let min = usize::from(required);
        params.push(InvalidParam::new(
            name,
            format!("must be {min} to {max} characters"),
        ));
    }
}

/// A request whose one field is a required text of 1 to `max` characters.
///
/// # Errors
/// The 400 naming the field.
pub fn one_text(name: &str, value: &str, max: usize) -> Result<(), Problem> {
    let mut params = Vec::new();
    text(name, value, max, true, &mut params);
    checked(params)
}

/// One of `allowed`.
pub fn one_of(name: &str, value: &str, allowed: &[&str], params: &mut Vec<InvalidParam>) {
    if !allowed.contains(&value) {
        params.push(InvalidParam::new(
            name,
            format!("must be one of {}", allowed.join(", ")),
        ));
    }
}

/// The 400 listing `params`, if there are any.
///
/// # Errors
/// The problem naming every bad field.
pub fn checked(params: Vec<InvalidParam>) -> Result<(), Problem> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid(codes::INVALID_BODY, params))
    }
}

/// A page size: 1 to 200, 50 when absent.
///
/// # Errors
/// Out of range, naming `limit`.
pub fn page_limit(limit: Option<i64>) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(50);
    if (1..=200).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::field("limit", "must be 1 to 200"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_field() {
        let mut params = Vec::new();
        slug("id", "Not A Slug", &mut params);
        slug("ok", "a-slug-1", &mut params);
        text("title", " ", 10, true, &mut params);
        text("notes", "", 10, false, &mut params);
        text("long", "elevenchars", 10, false, &mut params);
        one_of("kind", "x", &["a", "b"], &mut params);
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["id", "title", "long", "kind"]);
        assert!(checked(params).is_err());
        assert!(checked(Vec::new()).is_ok());
        assert_eq!(page_limit(None).ok(), Some(50));
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(201)).is_err());
    }
}
