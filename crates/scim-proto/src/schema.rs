//! The schemas this server speaks (RFC 7643 §4, §8.7) as static data.
//!
//! One definition serves four purposes: validating and canonicalising incoming
//! documents, resolving filter and PATCH paths (case-insensitively, with or
//! without a schema URN), choosing case-exact or case-insensitive comparison,
//! and rendering `/Schemas` and `/ResourceTypes`.

use crate::ast::AttrPath;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug)]
pub struct AttributeDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

impl AttributeDef {
    /// Looks a sub-attribute up by name, ignoring case.
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        find(self.sub_attributes, name)
    }
}

/// A schema: its URN and top-level attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        find(self.attributes, name)
    }
}

fn find(defs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// A resource type: core schema, extensions, endpoint.
#[derive(Debug)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static SchemaDef,
    /// Known extensions (URN, required).
    pub extensions: &'static [(&'static SchemaDef, bool)],
}

/// Where a path landed in the schema.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// `None` for the core schema, else the extension URN as defined.
    pub extension: Option<&'static str>,
    pub attr: &'static AttributeDef,
    pub sub: Option<&'static AttributeDef>,
}

impl ResourceType {
    /// The schema that owns `urn` (core or a known extension), ignoring case.
    pub fn schema_for_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        if self.schema.id.eq_ignore_ascii_case(urn) {
            return Some(self.schema);
        }
        self.extensions
            .iter()
            .map(|(s, _)| *s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves an attribute path against the core schema or a known
    /// extension. Unknown attributes (including attributes of unknown
    /// extension schemas, which this server stores as sent) give `None`.
    pub fn resolve(&self, path: &AttrPath) -> Option<Resolved> {
        let (extension, schema) = match &path.urn {
            None => (None, self.schema),
            Some(urn) => {
                let schema = self.schema_for_urn(urn)?;
                let ext = (!std::ptr::eq(schema, self.schema)).then_some(schema.id);
                (ext, schema)
            }
        };
        let attr = schema.attribute(&path.name)?;
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(attr.sub(s)?),
        };
        Some(Resolved {
            extension,
            attr,
            sub,
        })
    }

    /// Whether string comparisons on `path` are case-exact. Unknown
    /// attributes compare case-insensitively (the RFC default, `caseExact`
    /// false). `sub_after_filter` is the sub-attribute after a value filter.
    pub fn case_exact(&self, path: &AttrPath) -> bool {
        self.resolve(path)
            .map(|r| r.sub.unwrap_or(r.attr).case_exact)
            .unwrap_or(false)
    }
}

// --- Definitions -----------------------------------------------------------

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttributeDef {
    AttributeDef {
        name,
        ty,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn s(name: &'static str, description: &'static str) -> AttributeDef {
    attr(name, AttrType::String, description)
}

const fn multi(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    AttributeDef {
        multi_valued: true,
        sub_attributes,
        ..attr(name, AttrType::Complex, description)
    }
}

const TYPED_MULTI_SUBS: &[AttributeDef] = &[
    s("value", "The attribute's significant value."),
    s(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    s("type", "A label indicating the attribute's function."),
    attr(
        "primary",
        AttrType::Boolean,
        "A Boolean value indicating the 'primary' or preferred attribute value.",
    ),
];

const ADDRESS_SUBS: &[AttributeDef] = &[
    s(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    s("streetAddress", "The full street address component."),
    s("locality", "The city or locality component."),
    s("region", "The state or region component."),
    s("postalCode", "The zip code or postal code component."),
    s("country", "The country name component."),
    s(
        "type",
        "A label indicating the attribute's function, e.g. 'work' or 'home'.",
    ),
    attr(
        "primary",
        AttrType::Boolean,
        "Whether this is the primary address.",
    ),
];

const NAME_SUBS: &[AttributeDef] = &[
    s("formatted", "The full name, formatted for display."),
    s("familyName", "The family name of the User."),
    s("givenName", "The given name of the User."),
    s("middleName", "The middle name(s) of the User."),
    s("honorificPrefix", "The honorific prefix(es) of the User."),
    s("honorificSuffix", "The honorific suffix(es) of the User."),
];

const GROUP_REF_SUBS: &[AttributeDef] = &[
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..s("value", "The identifier of the User's group.")
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        reference_types: &["Group"],
        ..attr(
            "$ref",
            AttrType::Reference,
            "The URI of the corresponding 'Group' resource.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..s(
            "display",
            "A human-readable name, primarily used for display purposes.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        canonical_values: &["direct", "indirect"],
        ..s("type", "How the membership was derived.")
    },
];

/// `id`, `externalId` and `meta` are common attributes (RFC 7643 §3.1); they
/// are listed in each core schema so that paths resolve uniformly.
const fn id_attr() -> AttributeDef {
    AttributeDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        returned: Returned::Always,
        uniqueness: Uniqueness::Server,
        ..s(
            "id",
            "Unique identifier for the SCIM resource, assigned by the service provider.",
        )
    }
}

const fn external_id_attr() -> AttributeDef {
    AttributeDef {
        case_exact: true,
        ..s(
            "externalId",
            "An identifier for the resource as defined by the provisioning client.",
        )
    }
}

const META_SUBS: &[AttributeDef] = &[
    AttributeDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..s(
            "resourceType",
            "The name of the resource type of the resource.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..attr(
            "created",
            AttrType::DateTime,
            "When the resource was added.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..attr(
            "lastModified",
            AttrType::DateTime,
            "When the resource was last modified.",
        )
    },
    AttributeDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..attr("location", AttrType::Reference, "The URI of the resource.")
    },
    AttributeDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..s("version", "The version (ETag) of the resource.")
    },
];

const fn meta_attr() -> AttributeDef {
    AttributeDef {
        mutability: Mutability::ReadOnly,
        sub_attributes: META_SUBS,
        ..attr("meta", AttrType::Complex, "Resource metadata.")
    }
}

pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        id_attr(),
        external_id_attr(),
        meta_attr(),
        AttributeDef {
            required: true,
            uniqueness: Uniqueness::Server,
            ..s(
                "userName",
                "Unique identifier for the User, typically used to sign in.",
            )
        },
        AttributeDef {
            sub_attributes: NAME_SUBS,
            ..attr(
                "name",
                AttrType::Complex,
                "The components of the user's real name.",
            )
        },
        s(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        s(
            "nickName",
            "The casual way to address the user in real life.",
        ),
        attr(
            "profileUrl",
            AttrType::Reference,
            "A URI pointing to the User's online profile.",
        ),
        s("title", "The user's title, such as \"Vice President\"."),
        s(
            "userType",
            "The relationship between the organization and the user.",
        ),
        s(
            "preferredLanguage",
            "The User's preferred written or spoken language.",
        ),
        s(
            "locale",
            "The User's default location for localizing items.",
        ),
        s(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format.",
        ),
        attr(
            "active",
            AttrType::Boolean,
            "The User's administrative status.",
        ),
        AttributeDef {
            mutability: Mutability::WriteOnly,
            returned: Returned::Never,
            case_exact: true,
            ..s("password", "The User's cleartext password. Never returned.")
        },
        multi("emails", "Email addresses for the user.", TYPED_MULTI_SUBS),
        multi(
            "phoneNumbers",
            "Phone numbers for the User.",
            TYPED_MULTI_SUBS,
        ),
        multi(
            "ims",
            "Instant messaging addresses for the User.",
            TYPED_MULTI_SUBS,
        ),
        multi("photos", "URLs of photos of the User.", TYPED_MULTI_SUBS),
        multi(
            "addresses",
            "A physical mailing address for this User.",
            ADDRESS_SUBS,
        ),
        AttributeDef {
            mutability: Mutability::ReadOnly,
            ..multi(
                "groups",
                "A list of groups to which the user belongs.",
                GROUP_REF_SUBS,
            )
        },
        multi(
            "entitlements",
            "A list of entitlements for the User.",
            TYPED_MULTI_SUBS,
        ),
        multi("roles", "A list of roles for the User.", TYPED_MULTI_SUBS),
        multi(
            "x509Certificates",
            "A list of certificates issued to the User.",
            TYPED_MULTI_SUBS,
        ),
    ],
};

const MANAGER_SUBS: &[AttributeDef] = &[
    AttributeDef {
        case_exact: true,
        ..s(
            "value",
            "The id of the SCIM resource representing the User's manager.",
        )
    },
    AttributeDef {
        reference_types: &["User"],
        ..attr(
            "$ref",
            AttrType::Reference,
            "The URI of the SCIM resource representing the User's manager.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..s("displayName", "The displayName of the User's manager.")
    },
];

pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        s(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        s("costCenter", "Identifies the name of a cost center."),
        s("organization", "Identifies the name of an organization."),
        s("division", "Identifies the name of a division."),
        s("department", "Identifies the name of a department."),
        AttributeDef {
            sub_attributes: MANAGER_SUBS,
            ..attr("manager", AttrType::Complex, "The User's manager.")
        },
    ],
};

const MEMBER_SUBS: &[AttributeDef] = &[
    AttributeDef {
        case_exact: true,
        mutability: Mutability::Immutable,
        ..s("value", "Identifier of the member of this Group.")
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        reference_types: &["User", "Group"],
        ..attr(
            "$ref",
            AttrType::Reference,
            "The URI of the member resource.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..s("display", "A human-readable name for the member.")
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        canonical_values: &["User", "Group"],
        ..s("type", "The type of the member.")
    },
];

pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &[
        id_attr(),
        external_id_attr(),
        meta_attr(),
        AttributeDef {
            required: true,
            uniqueness: Uniqueness::Server,
            ..s("displayName", "A human-readable name for the Group.")
        },
        AttributeDef {
            returned: Returned::Default,
            ..multi("members", "A list of members of the Group.", MEMBER_SUBS)
        },
    ],
};

pub static USER_RESOURCE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[(&ENTERPRISE_USER, false)],
};

pub static GROUP_RESOURCE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    extensions: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_paths_ignoring_case() {
        let r = USER_RESOURCE
            .resolve(&AttrPath::with_sub("NAME", "givenname"))
            .expect("name.givenName resolves");
        assert_eq!(r.attr.name, "name");
        assert_eq!(r.sub.map(|s| s.name), Some("givenName"));
        assert!(r.extension.is_none());
    }

    #[test]
    fn resolves_enterprise_paths_by_urn() {
        let path = AttrPath {
            urn: Some(ENTERPRISE_USER_SCHEMA.to_ascii_uppercase()),
            name: "Manager".into(),
            sub: Some("value".into()),
        };
        let r = USER_RESOURCE
            .resolve(&path)
            .expect("manager.value resolves");
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        assert!(r.sub.is_some_and(|s| s.case_exact));
    }

    #[test]
    fn user_name_is_case_insensitive_and_external_id_case_exact() {
        assert!(!USER_RESOURCE.case_exact(&AttrPath::simple("userName")));
        assert!(USER_RESOURCE.case_exact(&AttrPath::simple("externalId")));
        assert!(USER_RESOURCE.case_exact(&AttrPath::simple("id")));
    }

    #[test]
    fn unknown_attributes_do_not_resolve() {
        assert!(
            USER_RESOURCE
                .resolve(&AttrPath::simple("favouriteColour"))
                .is_none()
        );
    }
}
