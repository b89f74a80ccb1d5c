//! Canonical text and round trips; `conjuncts`.

use super::*;

// --- Display ---

#[test]
fn display_renders_canonical_text() {
    let f = parse(r#"USERNAME EQ "x" AnD (title PR Or emails[TYPE eq "work"].value SW jo)"#);
    assert_eq!(
        f.to_string(),
        r#"USERNAME eq "x" and (title pr or emails[TYPE eq "work"].value sw "jo")"#
    );
}

#[test]
fn display_parenthesises_right_nested_chains() {
    let right_and = and(eq("a", "1"), and(eq("b", "2"), eq("c", "3")));
    assert_eq!(
        right_and.to_string(),
        r#"a eq "1" and (b eq "2" and c eq "3")"#
    );
    let right_or = or(eq("a", "1"), or(eq("b", "2"), eq("c", "3")));
    assert_eq!(
        right_or.to_string(),
        r#"a eq "1" or (b eq "2" or c eq "3")"#
    );
    assert_eq!(parse(&right_and.to_string()), right_and);
    assert_eq!(parse(&right_or.to_string()), right_or);
}

#[test]
fn display_escapes_strings() {
    let f = eq("title", "a\"b\\c\nd\u{1}é");
    assert_eq!(f.to_string(), r#"title eq "a\"b\\c\nd\u0001é""#);
    assert_eq!(parse(&f.to_string()), f);
}

#[test]
fn display_round_trips_every_sample() {
    for sample in SAMPLES {
        // Arrange
        let f = parse(sample);
        // Act
        let text = f.to_string();
        // Assert
        assert_eq!(parse(&text), f, "{sample} rendered as {text}");
    }
}
// --- conjuncts ---

#[test]
fn conjuncts_flattens_the_top_level_and_chain_in_order() {
    let f = parse(r#"id eq "g" and members eq "u" and (a eq "1" and b eq "2")"#);
    let parts = f.conjuncts();
    assert_eq!(
        parts,
        vec![
            &eq("id", "g"),
            &eq("members", "u"),
            &eq("a", "1"),
            &eq("b", "2")
        ]
    );
}

#[test]
fn conjuncts_of_a_single_term_is_the_term() {
    let f = parse(r#"emails[type eq "work"].value eq "x""#);
    assert_eq!(f.conjuncts(), vec![&f]);
}

#[test]
fn conjuncts_does_not_descend_into_or_or_not() {
    let f = parse(r#"a eq "1" and (b eq "2" or c eq "3") and not (d eq "4" and e eq "5")"#);
    let parts = f.conjuncts();
    assert_eq!(parts.len(), 3);
    assert!(matches!(parts[1], Filter::Or(..)));
    assert!(matches!(parts[2], Filter::Not(..)));
}
