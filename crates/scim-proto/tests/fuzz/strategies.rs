//! Generators: client text and JSON shaped like what Entra, Okta and the
//! others send, mixed with what nobody should send: multi-byte and
//! case-changing characters in keys and values, strings at and just past
//! every length limit, lists at and past the value caps, nesting past every
//! depth limit, and random JSON.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value, json};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Pieces that break naive string handling: multi-byte characters (2, 3 and
/// 4 bytes), characters whose lowercase is longer (`İ`, `Ⱥ`) or shorter
/// (`ẞ`, Kelvin sign) in bytes, combining marks, controls, and the grammar's
/// own punctuation.
const TRICKY: &[&str] = &[
    "€", "İ", "ı", "ß", "ẞ", "Ⱥ", "ǅ", "K", "😀", "\u{301}", "é", "\u{0}", "\u{7f}", "\u{200b}",
    "\u{feff}", "\"", "\\", ":", ".", "[", "]", "(", ")", " ", "\t", "\n", "urn:", "$", "-", "_",
    ",", "'", "/", "%", "ab€", "€€",
];

/// Byte lengths at and around the limits: `MAX_ID_LEN` (256),
/// `MAX_NAME_LEN` (1024), `MAX_FILTER_LEN` (4096).
const EDGE_LENGTHS: &[usize] = &[
    0, 1, 3, 4, 5, 255, 256, 257, 1023, 1024, 1025, 4095, 4096, 4097,
];
const FILL: &[&str] = &["a", "İ", "€", "😀", "ẞ", "Ⱥ", "a€", " "];

/// `fill` repeated up to `len` bytes, cut on a character boundary.
pub fn repeat_to(fill: &str, len: usize) -> String {
    let mut s = String::with_capacity(len + 4);
    'outer: while s.len() < len {
        for c in fill.chars() {
            if s.len() + c.len_utf8() > len {
                break 'outer;
            }
            s.push(c);
        }
    }
    s
}

/// Flips the ASCII case of `name`'s letters where `mask`'s bits are set.
pub fn recase(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// 1–4 ASCII letters and digits (without a regex strategy, which would be
/// compiled again for every case).
pub fn ascii_word() -> impl Strategy<Value = String> {
    const ALNUM: &[char] = &[
        'a', 'b', 'e', 'i', 'n', 'r', 's', 'u', 'z', 'A', 'E', 'I', 'N', 'U', 'Z', '0', '1', '9',
    ];
    prop::collection::vec(select(ALNUM), 1..5).prop_map(String::from_iter)
}

pub fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(
            prop_oneof![select(TRICKY).prop_map(str::to_owned), ascii_word()],
            0..6,
        )
        .prop_map(|parts| parts.concat()),
        1 => (select(EDGE_LENGTHS), select(FILL)).prop_map(|(n, fill)| repeat_to(fill, n)),
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

/// Values Entra and the others write into string attributes.
pub fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => tricky_string(),
        1 => select(&[
            "True", "False", "true", "false", "TRUE", "", "work", "home", "mobile",
            "alice@contoso.com", "2024-02-29T12:00:00Z", "2024-13-01T00:00:00Z", "7f4b2c1e",
        ][..])
        .prop_map(str::to_owned),
    ]
}

pub fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-1e6f64..1e6).prop_map(|f| Number::from_f64(f).unwrap_or_else(|| Number::from(0))),
        Just(Number::from_f64(-0.0).unwrap_or_else(|| Number::from(0))),
        Just(Number::from_f64(1.0).unwrap_or_else(|| Number::from(0))),
        Just(Number::from(1)),
    ]
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => number().prop_map(Value::Number),
        4 => string_value().prop_map(Value::String),
    ]
}

/// A key for a JSON object: a known attribute in any case, a dotted or URN
/// path, or anything.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (select(KNOWN_NAMES), any::<u64>()).prop_map(|(n, m)| recase(n, m)),
        1 => select(URN_KEYS).prop_map(str::to_owned),
        1 => (select(URN_KEYS), select(KNOWN_NAMES)).prop_map(|(u, n)| format!("{u}:{n}")),
        1 => (select(KNOWN_NAMES), select(KNOWN_NAMES)).prop_map(|(a, b)| format!("{a}.{b}")),
        2 => tricky_string(),
    ]
}

pub const KNOWN_NAMES: &[&str] = &[
    "userName",
    "externalId",
    "displayName",
    "nickName",
    "title",
    "active",
    "name",
    "givenName",
    "familyName",
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "members",
    "groups",
    "id",
    "meta",
    "schemas",
    "value",
    "type",
    "primary",
    "display",
    "locality",
    "manager",
    "department",
    "employeeNumber",
    "password",
    "x509Certificates",
    "entitlements",
    "timezone",
    "locale",
    "$ref",
    "costCode",
    "ab€",
    "İd",
];

pub const URN_KEYS: &[&str] = &[
    ENTERPRISE,
    CUSTOM,
    CORE_USER,
    CORE_GROUP,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
    "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
    "urn:x",
    "urn:",
    "urn:€:User",
    "urnx",
];

/// Random JSON: nested a few levels, with tricky keys and values.
pub fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A list long enough to cross a cap, built cheaply: `n` elements of
/// `distinct` distinct member objects, bare ids or strings.
pub fn long_list() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            40 => select(&[999usize, 1000, 1001, 1500][..]),
            1 => select(&[20_000usize, 20_001][..]),
        ],
        1usize..2000,
        0u8..3,
    )
        .prop_map(|(n, distinct, shape)| {
            Value::Array(
                (0..n)
                    .map(|i| {
                        let id = format!("u{}€", i % distinct);
                        match shape {
                            0 => json!({ "value": id }),
                            1 => Value::String(id),
                            _ => json!({ "value": id, "type": "work" }),
                        }
                    })
                    .collect(),
            )
        })
}

/// JSON nested `depth` levels (arrays or objects), past serde_json's 128.
pub fn deep() -> impl Strategy<Value = Value> {
    (1usize..200, any::<bool>(), leaf()).prop_map(|(depth, arrays, leaf)| nest(depth, arrays, leaf))
}

pub fn nest(depth: usize, arrays: bool, leaf: Value) -> Value {
    (0..depth).fold(leaf, |v, _| {
        if arrays {
            Value::Array(vec![v])
        } else {
            let mut m = Map::with_capacity(1);
            m.insert("value".to_owned(), v);
            Value::Object(m)
        }
    })
}

/// A value for an attribute: usually plausible for some attribute, sometimes
/// deep nesting or anything at all. (Long lists are costly to build, so the
/// body generators add one at most, now and then.)
pub fn attr_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        18 => leaf(),
        9 => prop::collection::vec(multi_element(), 0..4).prop_map(Value::Array),
        6 => complex_value(),
        6 => json(),
        1 => deep(),
    ]
}

/// A list key and a long list for it.
pub fn long_entry() -> impl Strategy<Value = (String, Value)> {
    (
        prop_oneof![
            select(
                &[
                    "members", "emails", "roles", "groups", "someList", "Members"
                ][..]
            )
            .prop_map(str::to_owned),
            key(),
        ],
        long_list(),
    )
}

/// An element of `emails`, `phoneNumbers`, `roles`, `members`, ….
pub fn multi_element() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (
            string_value(),
            prop::option::of(select(&["work", "home", "mobile", "Work", "€"][..])),
            prop::option::of(prop_oneof![
                any::<bool>().prop_map(Value::Bool),
                select(&["True", "False", "maybe"][..]).prop_map(|s| Value::String(s.to_owned())),
            ]),
            any::<u64>(),
        )
            .prop_map(|(value, ty, primary, mask)| {
                let mut m = Map::new();
                m.insert(recase("value", mask), Value::String(value));
                if let Some(t) = ty {
                    m.insert(recase("type", mask >> 8), Value::String(t.to_owned()));
                }
                if let Some(p) = primary {
                    m.insert(recase("primary", mask >> 16), p);
                }
                Value::Object(m)
            }),
        1 => leaf(),
        1 => json(),
    ]
}

pub fn complex_value() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), leaf()), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// A User or Group body as a client might POST it.
pub fn resource_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        32 => prop::collection::vec(entry(), 0..10).prop_map(|entries| {
            let mut m: Map<String, Value> = entries.into_iter().collect();
            // Usually a usable name, so that validation goes past it.
            m.entry("userName".to_owned()).or_insert_with(|| json!("alice@contoso.com"));
            m.entry("displayName".to_owned()).or_insert_with(|| json!("Sales"));
            Value::Object(m)
        }),
        8 => prop::collection::vec(entry(), 0..10)
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        4 => json(),
        1 => (prop::collection::vec(entry(), 0..4), long_entry()).prop_map(|(entries, (k, v))| {
            let mut m: Map<String, Value> = entries.into_iter().collect();
            m.insert("userName".into(), json!("a"));
            m.insert("displayName".into(), json!("a"));
            if k.starts_with("urn") {
                m.insert(ENTERPRISE.into(), json!({ k: v }));
            } else {
                m.insert(k, v);
            }
            Value::Object(m)
        }),
        1 => many_keys(),
    ]
}

/// A body with many keys, several spellings of the same name among them.
pub fn many_keys() -> impl Strategy<Value = Value> {
    (1usize..1500, 1usize..50, any::<u64>()).prop_map(|(n, distinct, mask)| {
        let mut m = Map::new();
        m.insert("userName".into(), json!("a"));
        m.insert("displayName".into(), json!("a"));
        for i in 0..n {
            let name = format!("attr{}", i % distinct);
            m.insert(recase(&name, mask.rotate_left(i as u32)), json!(i));
        }
        Value::Object(m)
    })
}

pub fn entry() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        6 => (key(), attr_value()),
        1 => (select(&[ENTERPRISE, CUSTOM, CORE_USER, CORE_GROUP][..]), complex_attrs())
            .prop_map(|(k, v)| (k.to_owned(), v)),
        1 => (any::<u64>(), string_value()).prop_map(|(m, v)| (recase("userName", m), json!(v))),
        1 => (any::<u64>(), select(&["True", "False", "true", "yes", ""][..]))
            .prop_map(|(m, v)| (recase("active", m), json!(v))),
        1 => manager().prop_map(|v| (format!("{ENTERPRISE}:manager"), v)),
    ]
}

/// An extension (or core) schema object of attributes.
pub fn complex_attrs() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), attr_value()), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// The manager in every form: bare id, object, legacy array, empty.
pub fn manager() -> impl Strategy<Value = Value> {
    prop_oneof![
        string_value().prop_map(Value::String),
        string_value().prop_map(|s| json!({ "value": s })),
        string_value().prop_map(|s| json!([{ "value": s }])),
        Just(json!("")),
        Just(json!({})),
        Just(json!({"value": 5})),
        leaf(),
    ]
}

// --- Filters and paths -------------------------------------------------------

const FILTER_ATTRS: &[&str] = &[
    "userName",
    "externalId",
    "displayName",
    "emails",
    "emails.value",
    "emails.type",
    "name.givenName",
    "active",
    "members",
    "manager",
    "meta.lastModified",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:level",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "not",
    "and",
    "ab€",
    "İd",
    "urn:€:x",
    "9lives",
    "a.b.c",
];

const OPS: &[&str] = &[
    "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "Eq", "pR", "eq€", "",
];

fn json_literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn comp_value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => string_value().prop_map(|s| json_literal(&s)),
        1 => select(&[
            "true", "false", "null", "True", "1", "-0", "1.5e3", "1e999", "-1e-999", "01", "1.",
            "jyoung", "\"\\uD800\"", "\"\\uDC00\"", "\"\\ud83d\\ude00\"", "\"\\q\"", "\"\\u12\"",
            "\"unterminated", "€",
        ][..])
        .prop_map(str::to_owned),
    ]
}

/// A filter tree rendered as text.
pub fn filter_text() -> impl Strategy<Value = String> {
    let attr = prop_oneof![
        4 => (select(FILTER_ATTRS), any::<u64>()).prop_map(|(a, m)| recase(a, m)),
        1 => tricky_string(),
    ];
    let term = (attr.clone(), select(OPS), comp_value_text()).prop_map(|(a, op, v)| {
        if op.eq_ignore_ascii_case("pr") {
            format!("{a} {op}")
        } else {
            format!("{a} {op} {v}")
        }
    });
    let attr2 = attr.clone();
    term.prop_recursive(5, 40, 3, move |inner| {
        prop_oneof![
            (
                inner.clone(),
                select(&["and", "or", "AND", "Or", "an€d"][..]),
                inner.clone()
            )
                .prop_map(|(a, j, b)| format!("{a} {j} {b}")),
            inner.clone().prop_map(|f| format!("({f})")),
            inner.clone().prop_map(|f| format!("not ({f})")),
            inner.clone().prop_map(|f| format!("not {f}")),
            (attr2.clone(), inner.clone()).prop_map(|(a, f)| format!("{a}[{f}]")),
            (
                attr2.clone(),
                inner.clone(),
                select(&["value", "type", "€", "a.b", ""][..]),
                comp_value_text()
            )
                .prop_map(|(a, f, s, v)| format!("{a}[{f}].{s} eq {v}")),
        ]
    })
}

/// Filter text, sometimes mangled: nested past the depth limit, with more
/// than the allowed comparisons, longer than the length limit, or with
/// characters inserted and removed anywhere.
pub fn filter_input() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => filter_text(),
        2 => (filter_text(), prop::collection::vec((any::<usize>(), tricky_string()), 1..4))
            .prop_map(|(mut s, edits)| {
                for (at, piece) in edits {
                    let bounds: Vec<usize> =
                        s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
                    let i = bounds.get(at % bounds.len()).copied().unwrap_or(0);
                    s.insert_str(i, &piece);
                }
                s
            }),
        1 => (filter_text(), any::<usize>(), any::<usize>()).prop_map(|(s, a, b)| {
            let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
            let (a, b) = (bounds[a % bounds.len()], bounds[b % bounds.len()]);
            let (a, b) = (a.min(b), a.max(b));
            format!("{}{}", s.get(..a).unwrap_or_default(), s.get(b..).unwrap_or_default())
        }),
        1 => (10usize..40, filter_text(), select(&["(", "not (", "emails["][..])).prop_map(
            |(n, f, open)| {
                let close = if open == "emails[" { "]" } else { ")" };
                format!("{}{f}{}", open.repeat(n), close.repeat(n))
            }
        ),
        1 => (55usize..80, select(&["and", "or"][..]))
            .prop_map(|(n, j)| vec!["userName eq \"a\""; n].join(&format!(" {j} "))),
        1 => (select(EDGE_LENGTHS), select(FILL))
            .prop_map(|(n, fill)| format!("userName eq {}", json_literal(&repeat_to(fill, n)))),
        1 => tricky_string(),
    ]
}

/// A PATCH `path`: what Entra and Okta send, and anything else.
pub fn patch_path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (select(&[
            "userName", "displayName", "nickName", "title", "active", "externalId",
            "name.givenName", "name.familyName", "emails", "members", "roles", "addresses",
            "emails[type eq \"work\"].value", "emails[type eq \"work\"]",
            "phoneNumbers[type eq \"mobile\"].value", "addresses[type eq \"work\"].locality",
            "roles[primary eq \"True\"].value", "emails[primary eq true].value",
            "emails[type eq \"work\" and primary eq true].display",
            "emails[value co \"€\"]", "members[value eq \"u1\"]",
            "members[value eq \"u1\" or value eq \"u2€\"]", "members[display eq \"x\"]",
            "members.value", "groups", "id", "meta.created", "schemas", "x.y", "ab€",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode",
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"].value",
            "urn:ietf:params:scim:schemas:core:2.0:Group:members",
        ][..]), any::<u64>()).prop_map(|(p, m)| if m % 3 == 0 { recase(p, m) } else { p.to_owned() }),
        1 => (select(FILTER_ATTRS), filter_text(), prop::option::of(select(&["value", "€", "a"][..])))
            .prop_map(|(a, f, s)| match s {
                Some(s) => format!("{a}[{f}].{s}"),
                None => format!("{a}[{f}]"),
            }),
        1 => filter_input(),
        1 => tricky_string(),
    ]
}

/// A PATCH `value`.
pub fn patch_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        16 => attr_value(),
        8 => pathless_object(),
        8 => members_value(),
        4 => select(&["True", "False", "true", ""][..]).prop_map(|s| json!(s)),
        4 => manager(),
        1 => long_list(),
        1 => long_entry().prop_map(|(k, v)| json!({ k: v })),
    ]
}

/// A path-less `value` object: dotted keys, flattened URN keys, extension
/// objects, `members`.
pub fn pathless_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![
            4 => (key(), attr_value()),
            1 => (select(&["name.givenName", "name.familyName", "emails[type eq \"work\"].value", "name.€"][..]), leaf())
                .prop_map(|(k, v)| (k.to_owned(), v)),
            1 => (select(&[ENTERPRISE, CUSTOM, CORE_USER][..]), complex_attrs())
                .prop_map(|(k, v)| (k.to_owned(), v)),
            1 => members_value().prop_map(|v| ("members".to_owned(), v)),
            1 => Just(("id".to_owned(), json!("group-id"))),
        ],
        0..6,
    )
    .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// Members in every form: `[{value}]`, one object, bare ids, long lists.
pub fn members_value() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        4 => select(&["u1", "u2€", "U1", "7f4b2c1e-9d3a-4b5c-8e6f-0a1b2c3d4e5f", ""][..]).prop_map(str::to_owned),
        1 => tricky_string(),
    ];
    prop_oneof![
        4 => prop::collection::vec(id.clone(), 0..5).prop_map(|ids| {
            Value::Array(ids.into_iter().map(|v| json!({ "value": v, "display": "x" })).collect())
        }),
        1 => id.clone().prop_map(|v| json!({ "value": v })),
        1 => prop::collection::vec(id, 0..5).prop_map(|ids| json!(ids)),
        1 => leaf(),
    ]
}

/// One operation, in both Entra dialects and broken ones.
pub fn operation() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        8 => (select(&["add", "replace", "remove"][..]), any::<u64>()).prop_map(|(o, m)| recase(o, m)),
        1 => tricky_string(),
    ];
    prop_oneof![
        12 => (op, prop::option::of(patch_path()), prop::option::of(patch_value()), any::<u64>())
            .prop_map(|(op, path, value, mask)| {
                let mut m = Map::new();
                m.insert(recase("op", mask), json!(op));
                if let Some(p) = path {
                    m.insert(recase("path", mask >> 4), json!(p));
                }
                if let Some(v) = value {
                    m.insert(recase("value", mask >> 8), v);
                }
                Value::Object(m)
            }),
        1 => json(),
    ]
}

/// A PATCH body: usually well-formed around generated operations.
pub fn patch_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        10 => prop::collection::vec(operation(), 1..5)
            .prop_map(|ops| json!({ "schemas": [PATCH_OP], "Operations": ops })),
        1 => (json(), json()).prop_map(|(schemas, ops)| json!({ "schemas": schemas, "Operations": ops })),
        1 => json(),
        1 => (1usize..1200).prop_map(|n| {
            json!({ "schemas": [PATCH_OP],
                    "Operations": vec![json!({"op": "add", "path": "nickName", "value": "x"}); n] })
        }),
    ]
}
