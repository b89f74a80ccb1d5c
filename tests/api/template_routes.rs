//! What API Gateway and Lambda are told in `infra/template.yaml` must fit the
//! code: every HTTP route reaches a handler of the router (as API Gateway's
//! `$default` stage hands it over), each function serves only its own paths,
//! every environment variable a function reads is set, and each function's
//! IAM policy grants what it uses and nothing of the others'. The portal
//! (User Provisioning page) has its own routes, the one IAM-authorized route
//! of the API, and a role that may change tokens, mapping and links but no
//! SCIM data and no member.
//!
//! The template is parsed as YAML; CloudFormation short tags (`!Ref`, `!Sub`,
//! `!GetAtt`) come through as tagged values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};
use serde_yaml::Value;

use crate::helpers::{TestApp, spawn_app};

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
const STORE_CONFIG_RS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/scim-store/src/config.rs"
);
/// The token store: the Secrets Manager calls the portal makes on tokens.
const TOKEN_SECRETS_RS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/scim-store/src/tokens/secrets.rs"
);
const PORTAL_MAIN_RS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../functions/portal/src/main.rs"
);
const PORTAL_FUNCTION: &str = "PortalFunction";
/// The route the application's backend mints portal links with.
const PORTAL_LINKS_PATH: &str = "/admin/v1/portal-links";

/// The router's fallback answers 404 with this detail: no route matched.
const ROUTER_FALLBACK_DETAIL: &str = "no such endpoint";
/// Stands for `{proxy+}`: an id that exists nowhere.
const SAMPLE_ID: &str = "2819c223-7f76-453a-919d-413861904646";

/// What each function of the template is: its binary, the path prefixes its
/// routes may use (none: no HTTP route at all), and the environment variables
/// its code needs from the template. A new function in the template fails
/// [`the_template_defines_exactly_the_known_functions`] until it is added here.
struct FunctionSpec {
    logical_id: &'static str,
    binary: &'static str,
    paths: &'static [&'static str],
    env: &'static [&'static str],
}

/// The discovery endpoints (no tenant token); served by the Users function.
const DISCOVERY: &[&str] = &[
    "/scim/v2/ServiceProviderConfig",
    "/scim/v2/ResourceTypes",
    "/scim/v2/Schemas",
];

const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        logical_id: "ScimUsersFunction",
        binary: "scim-users",
        paths: &[
            "/scim/v2/Users",
            // RFC 7644 §3.4.3 at the root: reads users and groups.
            "/scim/v2/.search",
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/ResourceTypes",
            "/scim/v2/Schemas",
        ],
        // StoreConfig::from_env (checked against its source below).
        env: &["DIRECTORY_TABLE", "TOKEN_SECRET_PREFIX"],
    },
    FunctionSpec {
        logical_id: "ScimGroupsFunction",
        binary: "scim-groups",
        paths: &["/scim/v2/Groups"],
        env: &["DIRECTORY_TABLE", "TOKEN_SECRET_PREFIX"],
    },
    FunctionSpec {
        logical_id: "SyncFunction",
        binary: "sync",
        paths: &[],
        // AWS_LAMBDA_FUNCTION_NAME (for re-invoking itself) is set by Lambda.
        env: &["DIRECTORY_TABLE", "MEMBERS_TABLE"],
    },
    FunctionSpec {
        logical_id: PORTAL_FUNCTION,
        binary: "portal",
        paths: &["/portal", PORTAL_LINKS_PATH],
        // StoreConfig::from_env, then what functions/portal/src/main.rs
        // requires (both checked against their sources below).
        env: &[
            "DIRECTORY_TABLE",
            "TOKEN_SECRET_PREFIX",
            "MEMBERS_TABLE",
            "PORTAL_SESSION_SECRET",
            "SYNC_FUNCTION_NAME",
        ],
    },
];

/// Where a route's path may start: API Gateway's `$default` stage adds no
/// prefix, so these are the paths the routers see.
const ROUTE_ROOTS: &[&str] = &["/scim/v2/", "/portal", "/admin/v1/"];

/// Which table each table variable must name.
const TABLE_VARIABLES: &[(&str, &str)] = &[
    ("DIRECTORY_TABLE", "DirectoryTable"),
    ("MEMBERS_TABLE", "MembersTable"),
];

/// The endpoints Entra (and the discovery clients) call, each of which some
/// HTTP route must carry.
const ENDPOINTS: &[&str] = &[
    "/scim/v2/Users",
    "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
    "/scim/v2/Groups",
    "/scim/v2/Groups/c1a5e0d4-3b7f-4e2a-9c86-5f0e2d7a9b13",
    "/scim/v2/ServiceProviderConfig",
    "/scim/v2/ResourceTypes",
    "/scim/v2/ResourceTypes/User",
    "/scim/v2/Schemas",
    "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
];

/// The RFC 7644 §3.4.3 searches (POST), each of which some route must carry.
const SEARCH_ENDPOINTS: &[&str] = &[
    "/scim/v2/Users/.search",
    "/scim/v2/Groups/.search",
    "/scim/v2/.search",
];

// --- Reading the template ------------------------------------------------------

fn template() -> Value {
    let text = std::fs::read_to_string(TEMPLATE).expect("infra/template.yaml is readable");
    serde_yaml::from_str(&text).expect("infra/template.yaml is valid YAML")
}

/// `(logical id, resource)` of every `AWS::Serverless::Function`.
fn functions(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("the template has a Resources mapping")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().expect("string logical id").to_owned(), r))
        .collect()
}

fn spec(logical_id: &str) -> &'static FunctionSpec {
    FUNCTIONS
        .iter()
        .find(|f| f.logical_id == logical_id)
        .unwrap_or_else(|| panic!("{logical_id} is not in FUNCTIONS of template_routes.rs"))
}

#[derive(Debug, Clone)]
struct Route {
    function: String,
    event: String,
    method: String,
    path: String,
}

impl Route {
    fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether a request path is one API Gateway sends along this route.
    fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix("/{proxy+}") {
            Some(prefix) => path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.is_empty()),
            None => self.path == path,
        }
    }

    /// A request path for this route: `{proxy+}` becomes a sample id.
    fn sample_path(&self) -> String {
        self.path.replace("{proxy+}", SAMPLE_ID)
    }

    /// The method to try: ANY routes every method, GET is one of them.
    fn sample_method(&self) -> &str {
        if self.method == "ANY" {
            "GET"
        } else {
            &self.method
        }
    }
}

/// Every `HttpApi` event of every function.
fn http_routes(template: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (function, resource) in functions(template) {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (name, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let name = name.as_str().expect("string event name").to_owned();
            let props = &event["Properties"];
            let path = props["Path"]
                .as_str()
                .unwrap_or_else(|| panic!("{function}.{name}: Path is a plain string"))
                .to_owned();
            let method = props["Method"]
                .as_str()
                .unwrap_or_else(|| panic!("{function}.{name}: Method is a plain string"))
                .to_ascii_uppercase();
            routes.push(Route {
                function: function.clone(),
                event: name,
                method,
                path,
            });
        }
    }
    routes
}

/// The logical id a `!Ref X` / `!GetAtt X.Attr` (or long form) points at.
fn referenced_resource(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Tagged(t) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.split('.').next())
            .or_else(|| t.value.as_sequence()?.first()?.as_str()),
        Value::Mapping(m) if m.len() == 1 => m
            .get("Ref")
            .and_then(Value::as_str)
            .or_else(|| m.get("Fn::GetAtt")?.as_sequence()?.first()?.as_str()),
        _ => None,
    }
}

/// Every string in `value` (tags and nesting unwrapped): `!Sub` templates,
/// `!Ref` targets, `!GetAtt` targets.
fn strings_in(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Tagged(t) => strings_in(&t.value),
        Value::Sequence(items) => items.iter().flat_map(strings_in).collect(),
        Value::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| strings_in(k).into_iter().chain(strings_in(v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn as_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug)]
struct Statement<'a> {
    sid: String,
    actions: Vec<String>,
    resource: &'a Value,
    condition: &'a Value,
}

/// The statements of a function's inline policies. A function's policies
/// must all be inline documents (no SAM policy templates, no managed
/// policies), so that they can be checked here.
fn statements<'a>(function: &'a Value, logical_id: &str) -> Vec<Statement<'a>> {
    let policies = function["Properties"]["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{logical_id}: Policies is a list"));
    policies
        .iter()
        .flat_map(|policy| {
            assert_eq!(
                policy["Version"].as_str(),
                Some("2012-10-17"),
                "{logical_id}: every policy is an inline policy document"
            );
            policy["Statement"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{logical_id}: a policy has a Statement list"))
                .iter()
        })
        .map(|s| {
            assert_eq!(s["Effect"].as_str(), Some("Allow"), "{logical_id}: {s:?}");
            assert!(
                s["NotAction"].is_null() && s["NotResource"].is_null(),
                "{logical_id}: no NotAction/NotResource: {s:?}"
            );
            Statement {
                sid: s["Sid"].as_str().unwrap_or_default().to_owned(),
                actions: as_list(&s["Action"]),
                resource: &s["Resource"],
                condition: &s["Condition"],
            }
        })
        .collect()
}

fn env_var<'a>(function: &'a Value, name: &str) -> &'a Value {
    &function["Properties"]["Environment"]["Variables"][name]
}

// --- Sending a route's request through the router ------------------------------

/// The payload-2.0 event that API Gateway's `$default` stage sends for a
/// request on `route` (no stage prefix in the path), as `lambda_http` reads
/// it; then through `scim_api::app` as `host::run_lambda` does.
async fn send_through_router(app: &TestApp, route: &Route) -> (u16, Json) {
    let path = route.sample_path();
    let method = route.sample_method();
    let route_key = route.key();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {}", app.token),
            "accept": "application/scim+json",
            "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": ""
            },
            "requestId": "template-routes",
            "routeKey": route_key,
            "stage": "$default",
            "time": "29/Nov/2026:05:10:05 +0000",
            "timeEpoch": 1_795_929_005_000_u64
        },
        "isBase64Encoded": false
    });
    if route.path.ends_with("/{proxy+}") {
        event["pathParameters"] = json!({ "proxy": SAMPLE_ID });
    }
    let reply = app.send_event(&event, &route.key()).await;
    (reply.status, reply.body)
}

// --- Routes --------------------------------------------------------------------

#[test]
fn the_template_defines_exactly_the_known_functions_with_their_binaries() {
    // Arrange
    let template = template();

    // Act
    let found: BTreeMap<String, Option<String>> = functions(&template)
        .into_iter()
        .map(|(id, f)| {
            let binary = f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .map(str::to_owned);
            (id, binary)
        })
        .collect();

    // Assert
    let expected: BTreeMap<String, Option<String>> = FUNCTIONS
        .iter()
        .map(|f| (f.logical_id.to_owned(), Some(f.binary.to_owned())))
        .collect();
    assert_eq!(found, expected, "functions of infra/template.yaml");
}

#[test]
fn every_http_route_is_unprefixed_under_a_known_root_and_defined_once() {
    // Arrange
    let template = template();
    let routes = http_routes(&template);
    assert!(!routes.is_empty(), "the template has no HttpApi route");

    // Act
    let mut seen = BTreeSet::new();
    for route in &routes {
        // Assert: the $default stage adds no prefix, so the template's path is
        // the path the router sees.
        assert!(
            ROUTE_ROOTS.iter().any(|root| route.path.starts_with(root)),
            "{}.{}: {} is not under one of {ROUTE_ROOTS:?}",
            route.function,
            route.event,
            route.path
        );
        assert!(
            !route.path.contains('{') || route.path.ends_with("/{proxy+}"),
            "{}.{}: only a trailing {{proxy+}} is used: {}",
            route.function,
            route.event,
            route.path
        );
        assert!(
            ["ANY", "GET", "POST", "PUT", "PATCH", "DELETE"].contains(&route.method.as_str()),
            "{}.{}: method {}",
            route.function,
            route.event,
            route.method
        );
        assert!(seen.insert(route.key()), "{} is routed twice", route.key());
    }
}

#[test]
fn every_http_route_goes_to_the_function_that_serves_its_path() {
    // Arrange
    let template = template();

    for route in http_routes(&template) {
        // Act
        let spec = spec(&route.function);
        let allowed = spec
            .paths
            .iter()
            .any(|prefix| route.path == *prefix || route.path == format!("{prefix}/{{proxy+}}"));

        // Assert
        assert!(
            allowed,
            "{}.{}: {} routes {} to {}, which serves only {:?}",
            route.function,
            route.event,
            route.key(),
            route.path,
            spec.binary,
            spec.paths
        );
    }
}

#[test]
fn every_endpoint_entra_calls_is_routed_to_exactly_one_function() {
    // Arrange
    let template = template();
    let routes = http_routes(&template);

    let requests = ENDPOINTS
        .iter()
        .map(|e| ("GET", e))
        .chain(SEARCH_ENDPOINTS.iter().map(|e| ("POST", e)));
    for (method, endpoint) in requests {
        // Act: API Gateway prefers an exact route over a greedy one.
        let exact: Vec<&Route> = routes
            .iter()
            .filter(|r| !r.path.contains('{') && r.matches(endpoint))
            .collect();
        let matched = if exact.is_empty() {
            routes.iter().filter(|r| r.matches(endpoint)).collect()
        } else {
            exact
        };

        // Assert
        let targets: BTreeSet<&str> = matched.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(
            targets.len(),
            1,
            "{method} {endpoint} is routed to {targets:?} by {:?}",
            matched.iter().map(|r| r.key()).collect::<Vec<_>>()
        );
        assert!(
            matched
                .iter()
                .any(|r| r.method == "ANY" || r.method == method),
            "{method} {endpoint}: no route takes {method}"
        );
    }
    // The discovery endpoints need no token and belong to the Users function.
    for path in DISCOVERY {
        assert!(
            spec("ScimUsersFunction").paths.contains(path),
            "{path} is served by the Users function"
        );
    }
}

#[tokio::test]
async fn every_scim_route_of_the_template_reaches_a_handler_of_the_router() {
    // Arrange
    let app = spawn_app().await;
    let template = template();
    // The portal's routes go to its own router (the portal tests).
    let routes: Vec<Route> = http_routes(&template)
        .into_iter()
        .filter(|r| r.function != PORTAL_FUNCTION)
        .collect();
    assert!(!routes.is_empty(), "the template has no SCIM route");

    for route in &routes {
        // Act
        let (status, body) = send_through_router(&app, route).await;

        // Assert: a handler answered (a handler's own 404, "no user with id",
        // is fine; the router's fallback 404 and 405 are not).
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !(status == 404 && detail.starts_with(ROUTER_FALLBACK_DETAIL)),
            "{} ({} {}): no route of the router matches: {body}",
            route.key(),
            route.sample_method(),
            route.sample_path()
        );
        assert_ne!(
            status,
            405,
            "{} ({} {}): the router has the path but not the method: {body}",
            route.key(),
            route.sample_method(),
            route.sample_path()
        );
        assert!(
            status < 500,
            "{} ({} {}): {status} {body}",
            route.key(),
            route.sample_method(),
            route.sample_path()
        );
    }
}

// --- Environment ---------------------------------------------------------------

/// The variables a `StoreConfig` constructor requires, from its source: the
/// string literals passed to its `var("…")` / `required("…")` helpers.
fn variables_required_by(constructor: &str) -> Vec<String> {
    let source = std::fs::read_to_string(STORE_CONFIG_RS).expect("config.rs is readable");
    let start = source
        .find(&format!("pub fn {constructor}("))
        .unwrap_or_else(|| panic!("StoreConfig::{constructor} exists"));
    let body = &source[start..];
    let body = &body[..body[1..].find("pub fn").map_or(body.len(), |end| end + 1)];
    let mut found = Vec::new();
    for marker in ["var(\"", "required(\""] {
        found.extend(
            body.split(marker)
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned),
        );
    }
    found
}

#[test]
fn the_function_table_lists_every_variable_store_config_requires() {
    // Which constructor each function's main.rs calls.
    for (logical_id, constructor) in [
        ("ScimUsersFunction", "from_env"),
        ("ScimGroupsFunction", "from_env"),
        ("SyncFunction", "sync_from_env"),
        (PORTAL_FUNCTION, "from_env"),
    ] {
        // Arrange
        let spec = spec(logical_id);
        let main_rs = format!(
            "{}/../functions/{}/src/main.rs",
            env!("CARGO_MANIFEST_DIR"),
            spec.binary
        );
        let main_rs = std::fs::read_to_string(&main_rs)
            .unwrap_or_else(|e| panic!("{logical_id}: {main_rs}: {e}"));
        assert!(
            main_rs.contains(&format!("StoreConfig::{constructor}()")),
            "{logical_id} ({}) is configured by StoreConfig::{constructor}",
            spec.binary
        );

        // Act
        let required = variables_required_by(constructor);

        // Assert
        assert!(
            required.iter().any(|v| v == "DIRECTORY_TABLE"),
            "the variables of {constructor} were found in config.rs: {required:?}"
        );
        for name in &required {
            assert!(
                spec.env.contains(&name.as_str()),
                "{logical_id} runs StoreConfig::{constructor}, which requires {name}"
            );
        }
    }
}

#[test]
fn every_variable_a_function_reads_is_set_by_the_template() {
    // Arrange
    let template = template();
    let global = &template["Globals"]["Function"]["Environment"]["Variables"];

    for (logical_id, function) in functions(&template) {
        // Act
        let spec = spec(&logical_id);

        // Assert
        for name in spec.env {
            let value = env_var(function, name);
            let value = if value.is_null() {
                &global[*name]
            } else {
                value
            };
            assert!(!value.is_null(), "{logical_id} does not set {name}");
            assert!(
                value.as_str() != Some(""),
                "{logical_id} sets {name} to an empty string"
            );
        }
    }
}

#[test]
fn table_variables_name_their_tables_and_reach_only_functions_that_read_them() {
    // Arrange
    let template = template();

    for (logical_id, function) in functions(&template) {
        for (name, table) in TABLE_VARIABLES {
            // Act
            let value = env_var(function, name);
            if value.is_null() {
                continue;
            }

            // Assert
            assert_eq!(
                referenced_resource(value),
                Some(*table),
                "{logical_id}: {name} is !Ref {table}"
            );
            assert!(
                spec(&logical_id).env.contains(name),
                "{logical_id} sets {name}, which its code does not read"
            );
        }
    }
}

// --- Least privilege -------------------------------------------------------------

/// The logical ids of the resources a statement's Resource names.
fn statement_targets(statement: &Statement<'_>) -> Vec<String> {
    let mut targets: Vec<String> = match statement.resource {
        Value::Sequence(items) => items
            .iter()
            .filter_map(referenced_resource)
            .map(str::to_owned)
            .collect(),
        other => referenced_resource(other)
            .map(str::to_owned)
            .into_iter()
            .collect(),
    };
    // Tables named inside a !Sub (an index ARN, say) count too.
    for s in strings_in(statement.resource) {
        for table in ["DirectoryTable", "MembersTable"] {
            if s.contains(&format!("${{{table}")) {
                targets.push(table.to_owned());
            }
        }
    }
    targets
}

#[test]
fn no_function_is_granted_wildcard_actions() {
    let template = template();
    for (logical_id, function) in functions(&template) {
        for s in statements(function, &logical_id) {
            for action in &s.actions {
                assert!(
                    !action.contains('*'),
                    "{logical_id}/{}: wildcard action {action}",
                    s.sid
                );
            }
            assert!(
                strings_in(s.resource).iter().all(|r| r != "*"),
                "{logical_id}/{}: Resource \"*\"",
                s.sid
            );
        }
    }
}

#[test]
fn the_scim_functions_cannot_touch_the_members_table() {
    let template = template();
    for logical_id in ["ScimUsersFunction", "ScimGroupsFunction"] {
        let function = &template["Resources"][logical_id];
        for s in statements(function, logical_id) {
            let targets = statement_targets(&s);
            assert!(
                !targets.iter().any(|t| t == "MembersTable"),
                "{logical_id}/{} grants {:?} on the Members table",
                s.sid,
                s.actions
            );
            assert!(
                !strings_in(s.resource)
                    .iter()
                    .any(|r| r.contains("MembersTable")),
                "{logical_id}/{} names the Members table",
                s.sid
            );
        }
    }
}

#[test]
fn the_sync_cannot_read_tokens_nor_write_users_groups_or_their_claims() {
    // Arrange: what the sync may write in the directory: its change
    // markers, and what finishing a group delete removes (membership pairs
    // and mirrors, members' marks, the cleanup entry), and the outcome of
    // its runs in the activity log.
    let template = template();
    let logical_id = "SyncFunction";
    let function = &template["Resources"][logical_id];
    let allowed = [
        "T#*#DIRTY",
        "T#*#GSYNC",
        "T#*#GM#*",
        "T#*#UG#*",
        "T#*#CLEANUP",
        "T#*#ACTIVITY",
    ];

    for s in statements(function, logical_id) {
        // Assert: no Secrets Manager at all.
        assert!(
            !s.actions.iter().any(|a| a.starts_with("secretsmanager:")),
            "{logical_id}/{}: {:?}",
            s.sid,
            s.actions
        );
        if !statement_targets(&s).iter().any(|t| t == "DirectoryTable") {
            continue;
        }
        let writes: Vec<&String> = s
            .actions
            .iter()
            .filter(|a| {
                !matches!(
                    a.as_str(),
                    "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:BatchGetItem"
                )
            })
            .collect();
        if writes.is_empty() {
            continue;
        }
        for action in &writes {
            assert!(
                matches!(
                    action.as_str(),
                    "dynamodb:DeleteItem" | "dynamodb:PutItem" | "dynamodb:BatchWriteItem"
                ),
                "{logical_id}/{}: {action} on the directory table",
                s.sid
            );
        }
        let leading = as_list(&s.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        assert!(
            !leading.is_empty(),
            "{logical_id}/{}: writes need LeadingKeys",
            s.sid
        );
        for key in &leading {
            assert!(
                allowed.contains(&key.as_str()),
                "{logical_id}/{}: writes {key}, never a user, group or claim",
                s.sid
            );
        }
    }
}

#[test]
fn the_sync_may_invoke_only_itself_and_is_run_by_the_schedule() {
    // Arrange
    let template = template();
    let logical_id = "SyncFunction";
    let function = &template["Resources"][logical_id];
    let name = strings_in(&function["Properties"]["FunctionName"]);
    assert_eq!(
        name.len(),
        1,
        "{logical_id} has a fixed FunctionName (a string or a !Sub of one)"
    );
    let name = &name[0];

    // Act
    let invoke: Vec<Statement<'_>> = statements(function, logical_id)
        .into_iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("lambda:")))
        .collect();

    // Assert
    assert_eq!(invoke.len(), 1, "{logical_id}: one lambda statement");
    assert_eq!(invoke[0].actions, vec!["lambda:InvokeFunction".to_owned()]);
    let resources = strings_in(invoke[0].resource);
    assert!(
        resources
            .iter()
            .all(|r| r.ends_with(&format!(":function:{name}"))),
        "{logical_id} may invoke {resources:?}, but it is {name}"
    );
    let schedules: Vec<&Value> = function["Properties"]["Events"]
        .as_mapping()
        .expect("the sync has events")
        .values()
        .filter(|e| e["Type"].as_str() == Some("Schedule"))
        .collect();
    assert_eq!(schedules.len(), 1, "{logical_id}: one schedule");
    assert_eq!(
        referenced_resource(&schedules[0]["Properties"]["Schedule"]),
        Some("SyncSchedule"),
        "the schedule comes from the SyncSchedule parameter"
    );
    let input: Json = serde_json::from_str(
        schedules[0]["Properties"]["Input"]
            .as_str()
            .expect("the schedule has an Input string"),
    )
    .expect("the schedule's Input is JSON");
    assert_eq!(input, json!({"scheduled": true}));
}

/// The partition key of every item a DynamoDB write request names, read
/// from the request bodies the SDK sends (reads and condition checks are
/// not writes).
#[derive(Debug, Clone, Default)]
struct WrittenKeys(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl WrittenKeys {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for WrittenKeys {
    fn name(&self) -> &'static str {
        "WrittenKeys"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_default();
        let body: Json = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Json::Null);
        let mut pks = Vec::new();
        let mut push = |item: &Json| {
            if let Some(pk) = item["pk"]["S"].as_str() {
                pks.push(pk.to_owned());
            }
        };
        match op.as_str() {
            "PutItem" => push(&body["Item"]),
            "UpdateItem" | "DeleteItem" => push(&body["Key"]),
            _ => {}
        }
        for requests in body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for r in requests.as_array().into_iter().flatten() {
                push(&r["PutRequest"]["Item"]);
                push(&r["DeleteRequest"]["Key"]);
            }
        }
        for t in body["TransactItems"].as_array().into_iter().flatten() {
            push(&t["Put"]["Item"]);
            push(&t["Update"]["Key"]);
            push(&t["Delete"]["Key"]);
        }
        if let Ok(mut all) = self.0.lock() {
            all.extend(pks);
        }
        Ok(())
    }
}

/// IAM's `StringLike`: `*` is any run of characters, `?` any one.
fn string_like(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => {
            pattern.len() == value.len()
                && pattern
                    .chars()
                    .zip(value.chars())
                    .all(|(p, v)| p == '?' || p == v)
        }
        Some((head, rest)) => {
            value.len() >= head.len()
                && value.is_char_boundary(head.len())
                && string_like(head, &value[..head.len()])
                && (head.len()..=value.len())
                    .filter(|i| value.is_char_boundary(*i))
                    .any(|i| string_like(rest, &value[i..]))
        }
    }
}

/// The partition-key patterns a function may write in the directory.
fn directory_write_patterns(template: &Value, logical_id: &str) -> Vec<String> {
    let function = &template["Resources"][logical_id];
    let mut patterns = Vec::new();
    for s in statements(function, logical_id) {
        let writes = s.actions.iter().any(|a| {
            matches!(
                a.as_str(),
                "dynamodb:PutItem"
                    | "dynamodb:UpdateItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:BatchWriteItem"
            )
        });
        if !writes || !statement_targets(&s).iter().any(|t| t == "DirectoryTable") {
            continue;
        }
        let leading = as_list(&s.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        assert!(
            !leading.is_empty(),
            "{logical_id}/{}: directory writes are limited to partition-key patterns",
            s.sid
        );
        patterns.extend(leading);
    }
    patterns
}

#[test]
fn the_users_function_cannot_write_groups_and_the_groups_function_cannot_write_users() {
    let template = template();
    let users = directory_write_patterns(&template, "ScimUsersFunction");
    let groups = directory_write_patterns(&template, "ScimGroupsFunction");
    for pk in ["T#acme#GROUP", "T#acme#GROUPNAME", "T#acme#GROUPEXT"] {
        assert!(
            !users.iter().any(|p| string_like(p, pk)),
            "users may write {pk}"
        );
    }
    for pk in [
        "T#acme#USER",
        "T#acme#USERNAME",
        "T#acme#USEREXT",
        "T#acme#EMAIL#a@b.c",
        "T#acme#DIRTY",
    ] {
        assert!(
            !groups.iter().any(|p| string_like(p, pk)),
            "groups may write {pk}"
        );
    }
}

#[tokio::test]
async fn every_item_the_scim_functions_write_is_allowed_by_their_write_policy() {
    // Arrange: the app's stores on a client that records written keys.
    let base_app = spawn_app().await;
    let sdk = scim_store::config::emulator_aws_config(&crate::helpers::emulator_url().await).await;
    let keys = WrittenKeys::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(keys.clone())
            .build(),
    );
    let stores = scim_store::Stores::from_clients(
        dynamodb,
        aws_sdk_secretsmanager::Client::new(&sdk),
        &base_app.config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(scim_api::host::run_tcp(
        listener,
        scim_api::app(scim_api::AppState::from(stores)),
        std::future::pending(),
    ));
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}/scim/v2"),
        ..base_app
    };
    let template = template();
    let allowed = [
        (
            "/Users",
            directory_write_patterns(&template, "ScimUsersFunction"),
        ),
        (
            "/Groups",
            directory_write_patterns(&template, "ScimGroupsFunction"),
        ),
    ];
    let check = |path: &str, written: Vec<String>| {
        let (_, patterns) = allowed
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .expect("a SCIM path");
        for pk in written {
            assert!(
                patterns.iter().any(|p| string_like(p, &pk)),
                "{path} wrote partition {pk}, which its function's policy does not allow ({patterns:?})"
            );
        }
    };

    // Act: every kind of write Entra makes, each checked against the
    // policy of the function that serves its path.
    let user = app
        .create_user(&crate::helpers::entra_user("adele@contoso.com", "ext-1"))
        .await;
    check("/Users", keys.take());
    let manager = app
        .create_user(&crate::helpers::entra_user("megan@contoso.com", "ext-2"))
        .await;
    check("/Users", keys.take());
    let steps: Vec<(&str, String, Json)> = vec![
        (
            "PATCH",
            format!("/Users/{user}"),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "adele.v@contoso.com"}]}),
        ),
        (
            "POST",
            "/Groups".to_owned(),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "externalId": "g-1", "members": []}),
        ),
    ];
    let mut group = String::new();
    for (method, path, body) in steps {
        let reply = app.send(method, &path, Some(&body)).await;
        assert!(reply.status < 300, "{method} {path}: {}", reply.body);
        if method == "POST" {
            group = reply.body["id"].as_str().unwrap().to_owned();
        }
        check(&path, keys.take());
    }
    let group_path = format!("/Groups/{group}");
    for body in [
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": [{"value": user}, {"value": manager}]}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": manager}]}]}),
    ] {
        let reply = app.patch(&group_path, &body).await;
        assert!(reply.status < 300, "{}", reply.body);
        check(&group_path, keys.take());
    }
    let put = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "megan@contoso.com", "externalId": "ext-2", "active": true});
    assert!(app.put(&format!("/Users/{manager}"), &put).await.status < 300);
    check("/Users", keys.take());
    // A user still in a group, then the group.
    assert_eq!(app.delete(&format!("/Users/{user}")).await.status, 204);
    check("/Users", keys.take());
    assert_eq!(app.delete(&group_path).await.status, 204);
    check(&group_path, keys.take());
    assert_eq!(app.delete(&format!("/Users/{manager}")).await.status, 204);
    check("/Users", keys.take());
}

#[test]
fn string_like_matches_as_iam_does() {
    assert!(string_like("T#*#USER", "T#acme#USER"));
    assert!(!string_like("T#*#USER", "T#acme#USERNAME"));
    assert!(string_like("T#*#GM#*", "T#acme#GM#0b1c"));
    assert!(!string_like("T#*#GM#*", "T#acme#GROUP"));
    assert!(string_like("a?c", "abc"));
}

// --- The portal ----------------------------------------------------------------

/// Requests the portal's users and the application's backend make, each of
/// which must reach the portal function and nothing else: `(method, path)`.
const PORTAL_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/portal"),
    (
        "GET",
        "/portal/open/default/Xq3vR8tN2mK7pL0wZ5yB9cD4fG6hJ1sA",
    ),
    ("POST", "/portal/activate"),
    ("POST", "/portal/tokens"),
    ("GET", "/portal/revoke"),
    ("POST", "/portal/revoke"),
    ("POST", "/portal/sync"),
    ("POST", "/portal/mapping"),
    ("POST", "/portal/mapping/reset"),
    ("GET", "/portal/members"),
    ("GET", "/portal/history"),
    ("GET", "/portal/static/portal.css"),
    ("GET", "/portal/static/portal.js"),
    ("GET", "/portal/api/status"),
    ("POST", "/portal/api/activate"),
    ("PUT", "/portal/api/mapping"),
    ("GET", "/portal/api/preview"),
    ("POST", PORTAL_LINKS_PATH),
];

/// Requests no route may take: API Gateway answers them 404 (no route) or,
/// for the admin path with another method, never calls the function.
const UNROUTED: &[(&str, &str)] = &[
    ("GET", PORTAL_LINKS_PATH),
    ("DELETE", PORTAL_LINKS_PATH),
    ("POST", "/admin/v1/portal-links/extra"),
    ("POST", "/admin/v1/tokens"),
    ("GET", "/portalx"),
    ("GET", "/"),
];

/// The routes API Gateway picks for `method path`: an exact route before a
/// greedy one; a route takes the request if its method is the request's or
/// ANY.
fn resolve<'a>(routes: &'a [Route], method: &str, path: &str) -> Vec<&'a Route> {
    let takes = |r: &&Route| r.method == "ANY" || r.method == method;
    let exact: Vec<&Route> = routes
        .iter()
        .filter(|r| !r.path.contains('{') && r.matches(path))
        .filter(takes)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    routes
        .iter()
        .filter(|r| r.path.contains('{') && r.matches(path))
        .filter(takes)
        .collect()
}

/// The `HttpApi` event `name` of the portal function.
fn portal_event<'a>(template: &'a Value, name: &str) -> &'a Value {
    let event = &template["Resources"][PORTAL_FUNCTION]["Properties"]["Events"][name];
    assert!(!event.is_null(), "{PORTAL_FUNCTION} has no event {name}");
    event
}

#[test]
fn every_portal_request_is_routed_to_the_portal_function_alone() {
    // Arrange
    let template = template();
    let routes = http_routes(&template);

    for (method, path) in PORTAL_ENDPOINTS {
        // Act
        let matched = resolve(&routes, method, path);

        // Assert
        let targets: BTreeSet<&str> = matched.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(
            targets,
            BTreeSet::from([PORTAL_FUNCTION]),
            "{method} {path} is routed by {:?}",
            matched.iter().map(|r| r.key()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn nothing_else_under_the_portal_and_admin_roots_is_routed() {
    // Arrange
    let template = template();
    let routes = http_routes(&template);

    for (method, path) in UNROUTED {
        // Act
        let matched = resolve(&routes, method, path);

        // Assert
        assert!(
            matched.is_empty(),
            "{method} {path} is routed by {:?}",
            matched.iter().map(|r| r.key()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_admin_route_alone_uses_the_iam_authorizer() {
    // Arrange
    let template = template();
    let api_auth = &template["Resources"]["ScimApi"]["Properties"]["Auth"];

    // Act
    let links = portal_event(&template, "PortalLinks");

    // Assert: the API offers the IAM authorizer without making it the
    // default (the SCIM and portal routes authenticate themselves).
    assert_eq!(api_auth["EnableIamAuthorizer"].as_bool(), Some(true));
    assert!(
        api_auth["DefaultAuthorizer"].is_null() && api_auth["Authorizers"].is_null(),
        "ScimApi has no default and no other authorizer: {api_auth:?}"
    );
    assert_eq!(
        links["Properties"]["Path"].as_str(),
        Some(PORTAL_LINKS_PATH)
    );
    assert_eq!(links["Properties"]["Method"].as_str(), Some("POST"));
    assert_eq!(
        links["Properties"]["Auth"]["Authorizer"].as_str(),
        Some("AWS_IAM"),
        "{PORTAL_LINKS_PATH} is IAM-authorized"
    );
    for (logical_id, function) in functions(&template) {
        for (name, event) in function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            let path = event["Properties"]["Path"].as_str().unwrap_or_default();
            let auth = &event["Properties"]["Auth"];
            if path == PORTAL_LINKS_PATH {
                continue;
            }
            assert!(
                auth.is_null(),
                "{logical_id}.{name} ({path}) has an authorizer: {auth:?}"
            );
            assert!(
                !path.starts_with("/admin/"),
                "{logical_id}.{name}: {path} under /admin/ without the IAM authorizer"
            );
        }
    }
}

/// The `required("…")` names in the portal's main.rs.
fn variables_required_by_portal_main() -> Vec<String> {
    let source = std::fs::read_to_string(PORTAL_MAIN_RS).expect("portal main.rs is readable");
    source
        .split("required(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_variable_the_portal_requires_is_in_its_function_table() {
    // Arrange
    let portal = spec(PORTAL_FUNCTION);

    // Act
    let required = variables_required_by_portal_main();

    // Assert
    assert!(
        required.iter().any(|v| v == "SYNC_FUNCTION_NAME"),
        "the variables of functions/portal/src/main.rs were found: {required:?}"
    );
    for name in &required {
        assert!(
            portal.env.contains(&name.as_str()),
            "functions/portal/src/main.rs requires {name}"
        );
    }
    // StoreConfig::from_env leaves the Members table optional; the portal
    // needs it.
    let main_rs = std::fs::read_to_string(PORTAL_MAIN_RS).expect("portal main.rs is readable");
    assert!(main_rs.contains("MissingEnv(\"MEMBERS_TABLE\")"));
    assert!(portal.env.contains(&"MEMBERS_TABLE"));
}

#[test]
fn the_portal_session_key_is_generated_and_outside_the_token_prefix() {
    // Arrange
    let template = template();
    let secret = &template["Resources"]["PortalSessionSecret"];
    let portal = &template["Resources"][PORTAL_FUNCTION];

    // Act
    let name = strings_in(&secret["Properties"]["Name"]);
    let generated = &secret["Properties"]["GenerateSecretString"];

    // Assert
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(generated["PasswordLength"].as_u64(), Some(64));
    assert_eq!(generated["ExcludePunctuation"].as_bool(), Some(true));
    assert!(
        secret["Properties"]["SecretString"].is_null(),
        "the key is generated, never written in the template"
    );
    assert_eq!(
        referenced_resource(env_var(portal, "PORTAL_SESSION_SECRET")),
        Some("PortalSessionSecret")
    );
    assert_eq!(name.len(), 1, "PortalSessionSecret has a fixed Name");
    let prefix = strings_in(env_var(portal, "TOKEN_SECRET_PREFIX"));
    assert_eq!(prefix.len(), 1);
    assert!(
        !name[0].starts_with(&prefix[0]),
        "the session key {} is under the token prefix {}: the SCIM functions could read it",
        name[0],
        prefix[0]
    );
    // No other function may read it.
    for (logical_id, function) in functions(&template) {
        if logical_id == PORTAL_FUNCTION {
            continue;
        }
        for s in statements(function, &logical_id) {
            assert_ne!(
                referenced_resource(s.resource),
                Some("PortalSessionSecret"),
                "{logical_id}/{}",
                s.sid
            );
            for pattern in strings_in(s.resource) {
                let arn = format!(
                    "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{}-AbCdEf",
                    name[0]
                );
                assert!(
                    !string_like(&pattern, &arn),
                    "{logical_id}/{} ({pattern}) reaches the session key",
                    s.sid
                );
            }
        }
    }
}

/// The partition-key patterns a function may write in `table`.
fn table_write_patterns(template: &Value, logical_id: &str, table: &str) -> Vec<String> {
    let function = &template["Resources"][logical_id];
    let mut patterns = Vec::new();
    for s in statements(function, logical_id) {
        let writes = s.actions.iter().any(|a| {
            matches!(
                a.as_str(),
                "dynamodb:PutItem"
                    | "dynamodb:UpdateItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:BatchWriteItem"
            )
        });
        if !writes || !statement_targets(&s).iter().any(|t| t == table) {
            continue;
        }
        let leading = as_list(&s.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        assert!(
            !leading.is_empty(),
            "{logical_id}/{}: writes to {table} are limited to partition-key patterns",
            s.sid
        );
        patterns.extend(leading);
    }
    patterns
}

#[test]
fn the_portal_reads_the_directory_and_never_writes_it() {
    // Arrange
    let template = template();
    let function = &template["Resources"][PORTAL_FUNCTION];

    // Act
    let on_directory: Vec<String> = statements(function, PORTAL_FUNCTION)
        .into_iter()
        .filter(|s| statement_targets(s).iter().any(|t| t == "DirectoryTable"))
        .flat_map(|s| s.actions)
        .collect();

    // Assert
    assert!(
        on_directory.iter().any(|a| a == "dynamodb:Query"),
        "the portal reads the directory (status, preview): {on_directory:?}"
    );
    for action in &on_directory {
        assert!(
            matches!(
                action.as_str(),
                "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:BatchGetItem"
            ),
            "{PORTAL_FUNCTION}: {action} on the directory"
        );
    }
}

#[test]
fn the_portal_writes_only_the_registry_the_sync_settings_and_its_links_in_the_members_table() {
    // Arrange
    let template = template();
    let function = &template["Resources"][PORTAL_FUNCTION];

    // Act
    let patterns = table_write_patterns(&template, PORTAL_FUNCTION, "MembersTable");
    let write_actions: BTreeSet<String> = statements(function, PORTAL_FUNCTION)
        .into_iter()
        .filter(|s| statement_targets(s).iter().any(|t| t == "MembersTable"))
        .filter(|s| !s.condition.is_null())
        .flat_map(|s| s.actions)
        .collect();

    // Assert: activation registers the tenant, the mapping is the sync's
    // settings item, links are the portal's own.
    for pk in ["TENANTS", "T#acme#SYNC", "T#acme#PORTAL"] {
        assert!(
            patterns.iter().any(|p| string_like(p, pk)),
            "the portal may not write {pk} ({patterns:?})"
        );
    }
    // Members, their claims and links, the sync's reports: the sync's alone.
    for pk in [
        "T#acme#MEMBER",
        "T#acme#MEMAIL",
        "T#acme#MLINK",
        "T#acme#LINKLOG",
        "T#acme#WAIT",
        "T#acme#RUN",
        "T#acme#USER",
    ] {
        assert!(
            !patterns.iter().any(|p| string_like(p, pk)),
            "the portal may write {pk} ({patterns:?})"
        );
    }
    assert_eq!(
        write_actions,
        BTreeSet::from([
            "dynamodb:PutItem".to_owned(),
            "dynamodb:UpdateItem".to_owned()
        ]),
        "the portal puts and updates single items, never deletes"
    );
    // Every write statement on the Members table carries the condition.
    for s in statements(function, PORTAL_FUNCTION) {
        let writes = s.actions.iter().any(|a| {
            !matches!(
                a.as_str(),
                "dynamodb:GetItem"
                    | "dynamodb:Query"
                    | "dynamodb:BatchGetItem"
                    | "dynamodb:ConditionCheckItem"
            )
        });
        if writes && statement_targets(&s).iter().any(|t| t == "MembersTable") {
            assert!(
                !s.condition.is_null(),
                "{PORTAL_FUNCTION}/{}: unconditioned write on the Members table",
                s.sid
            );
        }
    }
}

/// The Secrets Manager operations a source file calls (`.get_secret_value()`
/// → `secretsmanager:GetSecretValue`).
fn secrets_manager_calls(source_path: &str) -> BTreeSet<String> {
    const OPERATIONS: &[(&str, &str)] = &[
        ("get_secret_value", "GetSecretValue"),
        ("create_secret", "CreateSecret"),
        ("put_secret_value", "PutSecretValue"),
        ("update_secret_version_stage", "UpdateSecretVersionStage"),
        ("describe_secret", "DescribeSecret"),
        ("list_secret_version_ids", "ListSecretVersionIds"),
        ("delete_secret", "DeleteSecret"),
        ("update_secret", "UpdateSecret"),
        ("tag_resource", "TagResource"),
        ("restore_secret", "RestoreSecret"),
    ];
    let source = std::fs::read_to_string(source_path)
        .unwrap_or_else(|e| panic!("{source_path} is readable: {e}"));
    OPERATIONS
        .iter()
        .filter(|(call, _)| source.contains(&format!(".{call}()")))
        .map(|(_, action)| format!("secretsmanager:{action}"))
        .collect()
}

#[test]
fn the_portal_manages_token_secrets_as_the_token_store_does_and_only_reads_its_session_key() {
    // Arrange
    let template = template();
    let function = &template["Resources"][PORTAL_FUNCTION];
    let prefix = strings_in(env_var(function, "TOKEN_SECRET_PREFIX"));
    let token_arn_suffix = format!(":secret:{}*", prefix[0]);
    let used_by_token_store = secrets_manager_calls(TOKEN_SECRETS_RS);
    assert!(
        used_by_token_store.contains("secretsmanager:CreateSecret"),
        "the token store's calls were found: {used_by_token_store:?}"
    );

    // Act
    let mut on_tokens = BTreeSet::new();
    let mut on_session_key = BTreeSet::new();
    for s in statements(function, PORTAL_FUNCTION) {
        let secrets: Vec<&String> = s
            .actions
            .iter()
            .filter(|a| a.starts_with("secretsmanager:"))
            .collect();
        if secrets.is_empty() {
            continue;
        }
        assert_eq!(
            secrets.len(),
            s.actions.len(),
            "{PORTAL_FUNCTION}/{}: Secrets Manager actions have statements of their own",
            s.sid
        );
        let resources = strings_in(s.resource);
        if referenced_resource(s.resource) == Some("PortalSessionSecret") {
            on_session_key.extend(s.actions.iter().cloned());
        } else if resources.len() == 1 && resources[0].ends_with(&token_arn_suffix) {
            on_tokens.extend(s.actions.iter().cloned());
        } else {
            panic!(
                "{PORTAL_FUNCTION}/{}: Secrets Manager on {resources:?}, neither the tokens nor the session key",
                s.sid
            );
        }
    }

    // Assert: exactly what activate / rotate / revoke call; the session key
    // (generated by the template) is only read.
    assert_eq!(on_tokens, used_by_token_store, "on {}*", prefix[0]);
    assert_eq!(
        on_session_key,
        BTreeSet::from(["secretsmanager:GetSecretValue".to_owned()])
    );
}

#[test]
fn the_portal_may_invoke_only_the_sync_function_which_it_is_told_the_name_of() {
    // Arrange
    let template = template();
    let function = &template["Resources"][PORTAL_FUNCTION];

    // Act
    let invoke: Vec<Statement<'_>> = statements(function, PORTAL_FUNCTION)
        .into_iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("lambda:")))
        .collect();

    // Assert
    assert_eq!(invoke.len(), 1, "{PORTAL_FUNCTION}: one lambda statement");
    assert_eq!(invoke[0].actions, vec!["lambda:InvokeFunction".to_owned()]);
    assert!(
        matches!(invoke[0].resource, Value::Tagged(t) if t.tag == "GetAtt"
            && t.value.as_str() == Some("SyncFunction.Arn")),
        "{PORTAL_FUNCTION} may invoke {:?}, not exactly !GetAtt SyncFunction.Arn",
        invoke[0].resource
    );
    assert_eq!(
        referenced_resource(env_var(function, "SYNC_FUNCTION_NAME")),
        Some("SyncFunction")
    );
    // The SCIM functions invoke nothing.
    for logical_id in ["ScimUsersFunction", "ScimGroupsFunction"] {
        let f = &template["Resources"][logical_id];
        for s in statements(f, logical_id) {
            assert!(
                !s.actions.iter().any(|a| a.starts_with("lambda:")),
                "{logical_id}/{}: {:?}",
                s.sid,
                s.actions
            );
        }
    }
}

#[test]
fn the_portal_outputs_name_its_function_and_the_admin_route() {
    // Arrange
    let template = template();
    let outputs = &template["Outputs"];

    // Act
    let name = referenced_resource(&outputs["PortalFunctionName"]["Value"]);
    let url = strings_in(&outputs["PortalLinksUrl"]["Value"]);

    // Assert
    assert_eq!(name, Some(PORTAL_FUNCTION));
    assert_eq!(url.len(), 1, "PortalLinksUrl is a !Sub of one string");
    assert!(
        url[0].starts_with("https://${ScimApi}.execute-api.")
            && url[0].ends_with(PORTAL_LINKS_PATH),
        "PortalLinksUrl: {}",
        url[0]
    );
}

#[tokio::test]
async fn every_item_the_portal_writes_in_the_members_table_is_allowed_by_its_policy() {
    // Arrange: the stores the portal's operations use, on a client that
    // records written keys.
    let app = spawn_app().await;
    let sdk = scim_store::config::emulator_aws_config(&crate::helpers::emulator_url().await).await;
    let keys = WrittenKeys::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(keys.clone())
            .build(),
    );
    let table = app.config.members_table.clone().expect("a members table");
    let state = scim_store::sync_state::DynamoSyncState::new(dynamodb.clone(), table.clone());
    let links = scim_store::portal::DynamoPortalLinks::new(dynamodb, &table);
    let patterns = table_write_patterns(&template(), PORTAL_FUNCTION, "MembersTable");
    let check = |what: &str, written: Vec<String>| {
        assert!(!written.is_empty(), "{what} wrote nothing");
        for pk in written {
            assert!(
                patterns.iter().any(|p| string_like(p, &pk)),
                "{what} wrote partition {pk}, which the portal's policy does not allow ({patterns:?})"
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // Act + Assert: activation's registry entry, the mapping, a link.
    use scim_store::portal::PortalLinkStore as _;
    use scim_store::sync_state::SyncStateStore as _;
    state.register_tenant(&app.tenant).await.unwrap();
    check("activate (registry)", keys.take());
    member_sync::set_mapping(
        &state,
        &app.tenant,
        vec![member_sync::mapping::MappingEntry::new("title", "jobTitle")],
    )
    .await
    .unwrap();
    check("mapping set", keys.take());
    member_sync::reset_mapping(&state, &app.tenant)
        .await
        .unwrap();
    check("mapping reset", keys.take());
    links
        .put_link(
            &app.tenant,
            "link-secret",
            now + 300,
            Some("https://app.example/"),
        )
        .await
        .unwrap();
    check("portal link", keys.take());
    let redeemed = links.redeem(&app.tenant, "link-secret", now).await.unwrap();
    assert!(
        matches!(redeemed, scim_store::portal::Redeemed::Opened { .. }),
        "{redeemed:?}"
    );
    check("opening the link", keys.take());
}

/// The portal's fixtures in `events/` (the SCIM ones are replayed by
/// lambda_events.rs).
const PORTAL_FIXTURES: &[&str] = &["portal-open.json", "portal-link.json"];

#[test]
fn the_portal_fixtures_are_requests_api_gateway_sends_on_the_templates_portal_routes() {
    // Arrange
    let template = template();
    let routes = http_routes(&template);

    for name in PORTAL_FIXTURES {
        let raw = crate::helpers::read_event(name);
        let event: Json = serde_json::from_str(&raw).expect("JSON");

        // Act
        let request = lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let matched = resolve(&routes, &method, &path);

        // Assert: the route API Gateway would pick is the one the event
        // names, and it is the portal's.
        assert_eq!(matched.len(), 1, "{name}: {method} {path}");
        assert_eq!(matched[0].function, PORTAL_FUNCTION, "{name}");
        assert_eq!(event["routeKey"], json!(matched[0].key()), "{name}");
        assert_eq!(
            event["requestContext"]["routeKey"], event["routeKey"],
            "{name}"
        );
        assert_eq!(event["rawPath"], json!(path), "{name}");
        assert_eq!(event["requestContext"]["stage"], json!("$default"));
        let body_len = event["body"].as_str().map_or(0, str::len);
        assert_eq!(
            event["headers"]["content-length"],
            json!(body_len.to_string()),
            "{name}"
        );
        if matched[0].path.ends_with("/{proxy+}") {
            let prefix = matched[0].path.trim_end_matches("{proxy+}");
            assert_eq!(
                event["pathParameters"]["proxy"],
                json!(path.strip_prefix(prefix).unwrap_or_default()),
                "{name}"
            );
        }
        // The admin route's event carries the caller API Gateway's IAM
        // authorizer verified; the portal's carry none.
        let iam = &event["requestContext"]["authorizer"]["iam"];
        if path == PORTAL_LINKS_PATH {
            assert!(
                iam["userArn"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("arn:aws:")),
                "{name}: requestContext.authorizer.iam.userArn"
            );
            assert!(
                request.headers()["authorization"]
                    .to_str()
                    .unwrap()
                    .starts_with("AWS4-HMAC-SHA256 "),
                "{name}: a SigV4 request"
            );
            let body: Json = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["tenant"], json!("default"), "{name}");
        } else {
            assert!(iam.is_null(), "{name}");
            assert!(request.headers().get("authorization").is_none(), "{name}");
        }
    }
}

/// The portal's router as the portal function serves it (admin route on),
/// on the test app's stores, with a session key of its own.
async fn portal_router(app: &TestApp) -> axum::Router {
    let sdk = scim_store::config::emulator_aws_config(&crate::helpers::emulator_url().await).await;
    let key = scim_store::portal::SecretsManagerSessionKey::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        &format!("{}portal-session-key", app.config.token_secret_prefix),
        true,
    );
    let state = scim_portal::PortalState::new(
        &app.stores,
        std::sync::Arc::new(key),
        scim_portal::PortalConfig {
            app_name: "scimsync".into(),
            admin_route: true,
            sync_schedule: None,
        },
        scim_portal::SyncLauncher::InProcess,
    )
    .expect("the test app has a Members table");
    scim_portal::router(state)
}

/// Sends a payload-2.0 event through `router` as `functions/portal` does.
async fn send_portal_event(router: &axum::Router, event: &Json) -> (u16, http::HeaderMap, String) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a payload-2.0 event");
    let (status, headers, bytes) =
        crate::helpers::read_response(router.clone(), request.map(axum::body::Body::new)).await;
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The portal's page for a path no route of its router has.
const PORTAL_FALLBACK_TITLE: &str = "Page not found";

#[tokio::test]
async fn every_portal_route_of_the_template_reaches_a_handler_of_the_portal_router() {
    // Arrange
    let app = spawn_app().await;
    let router = portal_router(&app).await;
    let template = template();
    let routes: Vec<Route> = http_routes(&template)
        .into_iter()
        .filter(|r| r.function == PORTAL_FUNCTION)
        .collect();
    // One request per route, on a path the portal serves.
    let samples: BTreeMap<String, (&str, &str)> = [
        ("GET /portal", ("GET", "/portal")),
        ("ANY /portal/{proxy+}", ("GET", "/portal/static/portal.css")),
        ("POST /admin/v1/portal-links", ("POST", PORTAL_LINKS_PATH)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        routes.iter().map(Route::key).collect::<BTreeSet<_>>(),
        samples.keys().cloned().collect::<BTreeSet<_>>(),
        "a sample request for every portal route"
    );

    for route in &routes {
        let (method, path) = samples[&route.key()];
        let mut event: Json =
            serde_json::from_str(&crate::helpers::read_event("portal-open.json")).unwrap();
        event["routeKey"] = json!(route.key());
        event["requestContext"]["routeKey"] = json!(route.key());
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        if let Some(prefix) = route.path.strip_suffix("{proxy+}") {
            event["pathParameters"] = json!({"proxy": path.strip_prefix(prefix).unwrap()});
        } else {
            event.as_object_mut().unwrap().remove("pathParameters");
        }

        // Act
        let (status, _, body) = send_portal_event(&router, &event).await;

        // Assert: a handler answered (the admin route refuses a request
        // without the IAM context: 403, its own answer).
        assert!(
            !body.contains(PORTAL_FALLBACK_TITLE),
            "{} ({method} {path}): the portal router has no such route: {status}",
            route.key()
        );
        assert_ne!(status, 405, "{} ({method} {path})", route.key());
        assert!(
            status < 500,
            "{} ({method} {path}): {status} {body}",
            route.key()
        );
    }
}

#[tokio::test]
async fn the_portal_fixtures_mint_a_link_that_opens_once_through_the_portal_router() {
    // Arrange
    let app = spawn_app().await;
    let router = portal_router(&app).await;
    let mut mint: Json =
        serde_json::from_str(&crate::helpers::read_event("portal-link.json")).unwrap();
    let body = json!({"tenant": app.tenant.as_str(), "returnUrl": "https://app.example/settings"})
        .to_string();
    mint["headers"]["content-length"] = json!(body.len().to_string());
    mint["body"] = json!(body);

    // Act: the app's backend mints a link (IAM context as API Gateway sends it).
    let (status, _, minted) = send_portal_event(&router, &mint).await;

    // Assert
    assert_eq!(status, 201, "{minted}");
    let minted: Json = serde_json::from_str(&minted).expect("JSON");
    let url = minted["url"].as_str().expect("url");
    let origin = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";
    let path = url
        .strip_prefix(origin)
        .unwrap_or_else(|| panic!("{url} is on {origin}"));
    assert!(
        path.starts_with(&format!("/portal/open/{}/", app.tenant)),
        "{url}"
    );

    // Without the IAM context the admin route refuses.
    let mut unsigned = mint.clone();
    unsigned["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert_eq!(send_portal_event(&router, &unsigned).await.0, 403);

    // Act: the admin opens it (portal-open.json with the minted path).
    let mut open: Json =
        serde_json::from_str(&crate::helpers::read_event("portal-open.json")).unwrap();
    open["rawPath"] = json!(path);
    open["requestContext"]["http"]["path"] = json!(path);
    open["pathParameters"]["proxy"] = json!(path.strip_prefix("/portal/").unwrap());
    let (first, headers, _) = send_portal_event(&router, &open).await;
    let (second, _, again) = send_portal_event(&router, &open).await;

    // Assert: a session cookie for HTTPS, then the link is used up.
    assert_eq!(first, 303);
    let cookie = headers[http::header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        headers[http::header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/portal")
    );
    assert_eq!(second, 410);
    assert!(again.contains("This link was already used"), "{again}");

    // The fixture's own secret was never minted.
    let (status, _, page) = send_portal_event(
        &router,
        &serde_json::from_str(&crate::helpers::read_event("portal-open.json")).unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(page.contains("This link is not valid"), "{page}");
}
