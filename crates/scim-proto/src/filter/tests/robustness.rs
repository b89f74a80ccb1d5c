//! Mutated and multi-byte input: an error or a filter, never a panic.

use super::*;

// --- Robustness ---

/// Feeds truncations, deletions, insertions and random splices of real
/// filters to both parsers: none may panic, and every accepted filter must
/// round-trip through `Display`.
#[test]
fn survives_truncated_and_mutated_filters_without_panicking() {
    // Arrange
    const NOISE: &[&str] = &[
        "(", ")", "[", "]", "\"", "\\", "\\u", "\\ud83d", ".", ":", " ", "and", "or", "not", "eq",
        "pr", "urn:", "emails", "1e5", "-", "true", "é", "😀", "$",
    ];
    let check = |input: &str| {
        if let Ok(f) = parse_filter(input) {
            let text = f.to_string();
            assert_eq!(parse_filter(&text).as_ref(), Ok(&f), "{input:?} → {text:?}");
        }
        let _ = crate::path::parse_patch_path(input);
        let _ = crate::path::parse_attr_path(input);
    };
    let mut seed: u64 = 0x5eed;
    let mut rand = move |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap_or(0) % n.max(1)
    };
    let mut cases = 0usize;
    // Act / Assert
    for sample in SAMPLES {
        let bounds: Vec<usize> = sample
            .char_indices()
            .map(|(i, _)| i)
            .chain([sample.len()])
            .collect();
        let head = |i: usize| sample.get(..i).unwrap_or_default();
        let tail = |i: usize| sample.get(i..).unwrap_or_default();
        for &b in &bounds {
            check(head(b));
            check(tail(b));
            cases += 2;
        }
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            check(&format!("{}{}", head(a), tail(b)));
            for noise in NOISE {
                check(&format!("{}{noise}{}", head(a), tail(a)));
                check(&format!("{}{noise}{}", head(a), tail(b)));
                cases += 2;
            }
        }
    }
    for _ in 0..3000 {
        let mut input = String::new();
        for _ in 0..rand(12) {
            if rand(2) == 0 {
                input.push_str(NOISE[rand(NOISE.len())]);
            } else {
                let sample = SAMPLES[rand(SAMPLES.len())];
                let bounds: Vec<usize> = sample.char_indices().map(|(i, _)| i).collect();
                let a = bounds[rand(bounds.len())];
                let b = bounds[rand(bounds.len())].max(a);
                input.push_str(sample.get(a..b).unwrap_or_default());
            }
        }
        check(&input);
        cases += 1;
    }
    assert!(cases > 10_000, "only {cases} cases");
}

#[test]
fn multi_byte_characters_anywhere_give_a_filter_error_or_a_filter_never_a_panic() {
    // Arrange: attribute names are ASCII; values may be anything.
    for (text, ok) in [
        (r#"ab€ eq "x""#, false),
        (r#"urn€:x eq "x""#, false),
        (r#"urn:€:x eq 1"#, false),
        (r#"emails[ty€pe eq "work"]"#, false),
        (r#"€"#, false),
        (r#"userName eq "İstanbul€""#, true),
        (r#"userName eq İ€"#, true),
        (r#"emails[type eq "wörk"].value eq "ü@x""#, true),
    ] {
        // Act
        let result = parse_filter(text);
        // Assert
        match result {
            Ok(f) => {
                assert!(ok, "{text:?} parsed");
                assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
            }
            Err(e) => {
                assert!(!ok, "{text:?}: {}", e.detail);
                assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
            }
        }
    }
}
