//! What API Gateway and Lambda are told in `infra/template.yaml` must fit the
//! code: every HTTP route reaches a handler of the router (as API Gateway's
//! `$default` stage hands it over), each function serves only its own paths,
//! every environment variable a function reads is set, and each function's
//! IAM policy grants what it uses and nothing of the others'.
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
];

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
fn every_http_route_is_unprefixed_under_scim_v2_and_defined_once() {
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
            route.path.starts_with("/scim/v2/"),
            "{}.{}: {} is not under /scim/v2/",
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

    for endpoint in ENDPOINTS {
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
            "GET {endpoint} is routed to {targets:?} by {:?}",
            matched.iter().map(|r| r.key()).collect::<Vec<_>>()
        );
        assert!(
            matched
                .iter()
                .any(|r| r.method == "ANY" || r.method == "GET"),
            "GET {endpoint}: no route takes GET"
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
async fn every_http_route_of_the_template_reaches_a_handler_of_the_router() {
    // Arrange
    let app = spawn_app().await;
    let template = template();
    let routes = http_routes(&template);

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
fn table_variables_name_their_tables_and_members_table_only_reaches_the_sync() {
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
fn the_sync_cannot_read_tokens_nor_write_the_directory_except_its_change_markers() {
    // Arrange
    let template = template();
    let logical_id = "SyncFunction";
    let function = &template["Resources"][logical_id];

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
        // The directory: reads, and DeleteItem only on T#<tenant>#DIRTY
        // and T#<tenant>#GSYNC.
        for action in &s.actions {
            match action.as_str() {
                "dynamodb:GetItem" | "dynamodb:Query" | "dynamodb:BatchGetItem" => {}
                "dynamodb:DeleteItem" => {
                    assert_eq!(
                        s.actions.len(),
                        1,
                        "{logical_id}/{}: DeleteItem has a statement of its own",
                        s.sid
                    );
                    let leading = &s.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                    assert_eq!(
                        as_list(leading),
                        vec!["T#*#DIRTY".to_owned(), "T#*#GSYNC".to_owned()],
                        "{logical_id}/{}: DeleteItem on the directory only for change markers",
                        s.sid
                    );
                }
                other => panic!("{logical_id}/{}: {other} on the directory table", s.sid),
            }
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
