//! Checks recorded Discord HTTP traffic against Discord's own OpenAPI 3.1 description.
//!
//! This module owns everything about the spec: finding and loading the fixture
//! (`shared/fixtures/discord/openapi.json`, read at run time and never copied into the
//! repo), matching concrete request paths to the spec's path templates, and validating
//! request/response bodies and path parameters with JSON Schema 2020-12 (which is what
//! OpenAPI 3.1 schemas are). It knows nothing about how traffic is recorded: callers hand
//! it a method, a path, a status and an optional JSON body, and get back a list of
//! human-readable violations (empty = conforming).
//!
//! Validation never touches the network: the whole spec document is registered as one
//! in-memory schema resource, so every `#/components/...` reference resolves locally,
//! and the validators are built offline.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, ValidationError, Validator};
use serde_json::{Value, json};

/// URI under which the spec document is registered; schemas are referenced as
/// `<SPEC_URI>#/components/schemas/X`. A URN so that nothing could ever try to fetch it.
const SPEC_URI: &str = "urn:guildops:discord-openapi";

/// Prefix the bot puts in front of every route (serenity talks to `/api/v10/...`).
const API_PREFIX: &str = "/api/v10";

/// Longest rendering of an offending value or message before it is cut: a failing
/// message object would otherwise be dumped whole into every violation.
const MAX_MESSAGE_CHARS: usize = 300;

/// A parsed spec plus a cache of compiled validators (one per distinct schema).
pub struct OpenApi {
    source: PathBuf,
    routes: Vec<Route>,
    registry: Registry<'static>,
    /// Keyed by the schema's JSON pointer inside the spec. A `Mutex` keeps `OpenApi`
    /// `Sync`, so one loaded spec can be shared (e.g. in a `OnceLock`) by parallel tests.
    cache: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApi")
            .field("source", &self.source)
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Route {
    template: String,
    segments: Vec<Segment>,
    /// Upper-case HTTP method -> operation.
    operations: BTreeMap<String, Operation>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
struct Operation {
    id: Option<String>,
    /// Path parameter name -> pointer of its schema (operation-level overrides path-level).
    path_params: BTreeMap<String, String>,
    request: RequestSpec,
    /// Documented status keys as written ("200", "4XX", "default") -> response.
    responses: Vec<(String, ResponseSpec)>,
}

#[derive(Debug)]
enum RequestSpec {
    /// The operation documents no request body.
    None,
    /// An `application/json` body with the schema at this pointer.
    Json { schema: String, required: bool },
    /// A body, but only in non-JSON content types (e.g. multipart uploads).
    Other { content_types: Vec<String> },
}

#[derive(Debug)]
struct ResponseSpec {
    /// Pointer of the `application/json` schema, if that content type is documented.
    json_schema: Option<String>,
    /// Every documented content type (to say what *is* documented when JSON is not).
    content_types: Vec<String>,
}

/// The result of matching a concrete path: the route and the raw parameter values.
struct Matched<'a> {
    route: &'a Route,
    params: Vec<(String, String)>,
}

impl OpenApi {
    /// Loads and prepares the spec. Error text names the path.
    pub fn load(path: &Path) -> Result<OpenApi, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read Discord OpenAPI spec {}: {e}", path.display()))?;
        let mut doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("Discord OpenAPI spec {} is not JSON: {e}", path.display()))?;
        let bad = |why: String| format!("Discord OpenAPI spec {}: {why}", path.display());

        // Discord's SnowflakeType carries both `pattern: ^(0|[1-9][0-9]*)$` and
        // `format: snowflake`. We check the format ourselves (decimal u64, which is
        // stricter than the pattern: it also rejects values past u64::MAX), so the
        // pattern is dropped to report one clear "is not a snowflake" per bad value
        // instead of two errors, one of them a raw regex.
        strip_snowflake_patterns(&mut doc);

        let routes = build_routes(&doc).map_err(bad)?;

        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(SPEC_URI, Draft::Draft202012.create_resource(doc))
            .and_then(|b| b.prepare())
            .map_err(|e| bad(format!("cannot index it as a JSON Schema resource: {e}")))?;

        Ok(OpenApi {
            source: path.to_path_buf(),
            routes,
            registry,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Where the default spec is looked for: `$GUILDOPS_SHARED_DIR/fixtures/discord/openapi.json`
    /// when that variable is set, else `<workspace root>/../shared/fixtures/discord/openapi.json`.
    pub fn default_path() -> PathBuf {
        let shared = match std::env::var_os("GUILDOPS_SHARED_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            // CARGO_MANIFEST_DIR is tests/harness; the workspace root is two levels up
            // and shared/ sits beside the repository checkout.
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        };
        let path = shared.join("fixtures/discord/openapi.json");
        // Resolve the "../.." so messages show where the file really is.
        path.canonicalize().unwrap_or(path)
    }

    /// Default location: `$GUILDOPS_SHARED_DIR/fixtures/discord/openapi.json`, else
    /// `<workspace root>/../shared/fixtures/discord/openapi.json`. Returns Err with a
    /// clear message saying the fixture is absent.
    pub fn load_default() -> Result<OpenApi, String> {
        let path = Self::default_path();
        if !path.is_file() {
            return Err(format!(
                "the Discord OpenAPI fixture ../shared/fixtures/discord/openapi.json is missing \
                 (looked for {}; set GUILDOPS_SHARED_DIR to the directory holding \
                 fixtures/discord/openapi.json)",
                path.display()
            ));
        }
        Self::load(&path)
    }

    /// The file this spec was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of (template, method) operations in the spec.
    pub fn operation_count(&self) -> usize {
        self.routes.iter().map(|r| r.operations.len()).sum()
    }

    /// The path template a concrete method+path is matched to, e.g.
    /// `"/guilds/{guild_id}/members/{user_id}/roles/{role_id}"`.
    pub fn template_for(&self, method: &str, path: &str) -> Option<String> {
        let (m, _) = self.find(method, path).ok()?;
        Some(m.route.template.clone())
    }

    /// The operation id for a concrete method+path, if the spec has it.
    pub fn operation_id(&self, method: &str, path: &str) -> Option<String> {
        let (_, op) = self.find(method, path).ok()?;
        op.id.clone()
    }

    /// Violations of the request: unknown route/method, path parameters that break their
    /// schema (e.g. a non-snowflake id), and a body missing/unexpected/invalid against the
    /// operation's `application/json` request schema. Empty vec = valid.
    ///
    /// `path` is the request path as sent, e.g. `/api/v10/guilds/1/members/2/roles/3`
    /// (the `/api/v10` prefix is optional; a query string is ignored). Pass `None` for a
    /// request without a body; `Some(Value::Null)` is a JSON `null` body.
    pub fn check_request(&self, method: &str, path: &str, body: Option<&Value>) -> Vec<String> {
        let (m, op) = match self.find(method, path) {
            Ok(found) => found,
            Err(why) => return vec![why],
        };
        let method = method.to_ascii_uppercase();
        let at = format!("{method} {} request", m.route.template);
        let mut out = Vec::new();

        for (name, value) in &m.params {
            let Some(pointer) = op.path_params.get(name) else {
                out.push(format!(
                    "{at}: path parameter {name} is not declared in the spec"
                ));
                continue;
            };
            let value = Value::String(value.clone());
            for why in self.validate(pointer, &value) {
                // The parameter is the whole instance, so its "(root)" location is noise.
                let why = why.strip_prefix("(root): ").unwrap_or(&why);
                out.push(format!("{at}: path parameter {name}: {why}"));
            }
        }

        match (&op.request, body) {
            (RequestSpec::None, None) => {}
            (RequestSpec::None, Some(_)) => out.push(format!(
                "{at}: has a JSON body, but the operation documents no request body"
            )),
            (RequestSpec::Json { required: true, .. }, None) => out.push(format!(
                "{at}: the operation requires a JSON body, none was sent"
            )),
            (
                RequestSpec::Json {
                    required: false, ..
                },
                None,
            ) => {}
            (RequestSpec::Json { schema, .. }, Some(body)) => {
                for why in self.validate(schema, body) {
                    out.push(format!("{at}: {why}"));
                }
            }
            // A multipart upload is recorded without a JSON body, so an absent JSON
            // body proves nothing either way for these operations.
            (RequestSpec::Other { .. }, None) => {}
            (RequestSpec::Other { content_types, .. }, Some(_)) => out.push(format!(
                "{at}: has a JSON body, but the operation documents only {}",
                content_types.join(", ")
            )),
        }
        out
    }

    /// Violations of a response: status not documented for the operation (documented
    /// `"4XX"`/`"default"` style keys are honoured), body not valid against that status's
    /// `application/json` schema, or a body on a 204.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Vec<String> {
        let (m, op) = match self.find(method, path) {
            Ok(found) => found,
            Err(why) => return vec![why],
        };
        let method = method.to_ascii_uppercase();
        let at = format!("{method} {} response {status}", m.route.template);

        let Some(resp) = response_for(&op.responses, status) else {
            let documented: Vec<&str> = op.responses.iter().map(|(k, _)| k.as_str()).collect();
            return vec![format!(
                "{at}: status {status} is not documented for {} (documented: {})",
                op.id.as_deref().unwrap_or("this operation"),
                documented.join(", ")
            )];
        };

        let mut out = Vec::new();
        if status == 204 {
            if body.is_some() {
                out.push(format!("{at}: a 204 response must have no body"));
            }
            return out;
        }
        match (&resp.json_schema, body) {
            (Some(schema), Some(body)) => {
                for why in self.validate(schema, body) {
                    out.push(format!("{at}: {why}"));
                }
            }
            (Some(_), None) => out.push(format!(
                "{at}: the spec documents an application/json body, none was returned"
            )),
            (None, Some(_)) if resp.content_types.is_empty() => out.push(format!(
                "{at}: has a JSON body, but the spec documents no body for this status"
            )),
            (None, Some(_)) => out.push(format!(
                "{at}: has a JSON body, but the spec documents only {}",
                resp.content_types.join(", ")
            )),
            (None, None) => {}
        }
        out
    }

    /// Compiles every schema the operations use (request bodies, responses, path
    /// parameters), caching them, and returns the ones that fail to compile. Costs a
    /// few seconds; useful to prove the whole spec resolves offline.
    pub fn precompile_all(&self) -> Vec<String> {
        let mut pointers: Vec<&str> = Vec::new();
        for route in &self.routes {
            for op in route.operations.values() {
                pointers.extend(op.path_params.values().map(String::as_str));
                if let RequestSpec::Json { schema, .. } = &op.request {
                    pointers.push(schema);
                }
                for (_, r) in &op.responses {
                    pointers.extend(r.json_schema.as_deref());
                }
            }
        }
        pointers.sort_unstable();
        pointers.dedup();
        pointers
            .into_iter()
            .filter_map(|p| self.validator(p).err())
            .collect()
    }

    /// Validates `instance` against the schema at `pointer`; returns "where: why" lines.
    fn validate(&self, pointer: &str, instance: &Value) -> Vec<String> {
        match self.validator(pointer) {
            Ok(v) => {
                let mut out = Vec::new();
                for err in v.iter_errors(instance) {
                    describe(&err, &mut out);
                }
                out
            }
            Err(why) => vec![why],
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        // A poisoned lock only means another test panicked mid-insert; the map of
        // finished validators is still sound.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let wrapper = json!({ "$ref": format!("{SPEC_URI}#{}", fragment_encode(pointer)) });
        let v = jsonschema::draft202012::options()
            .with_registry(&self.registry)
            .offline()
            // OpenAPI formats such as date-time and uri are checked; Discord's own
            // (int32, int64, double, nonce) are unknown to the validator and ignored,
            // except snowflake, which we define.
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .with_format("snowflake", is_snowflake)
            .build(&wrapper)
            .map_err(|e| {
                format!(
                    "schema {pointer} in {} does not compile: {e}",
                    self.source.display()
                )
            })?;
        let v = Arc::new(v);
        cache.insert(pointer.to_owned(), v.clone());
        Ok(v)
    }

    /// Matches a concrete path and picks the operation for `method`.
    fn find(&self, method: &str, path: &str) -> Result<(Matched<'_>, &Operation), String> {
        let method_uc = method.to_ascii_uppercase();
        let candidates = self.matches(path);
        if candidates.is_empty() {
            return Err(format!(
                "{method_uc} {path}: no such route in the Discord v10 OpenAPI spec"
            ));
        }
        // Most specific first; the first template that has the method wins. A
        // literal segment such as "@me" therefore beats {user_id} whenever the literal
        // route has the method; if it does not, the parameter route is used and its
        // parameter schema (a snowflake) reports the "@me" as a violation.
        for m in &candidates {
            if let Some(op) = m.route.operations.get(&method_uc) {
                return Ok((
                    Matched {
                        route: m.route,
                        params: m.params.clone(),
                    },
                    op,
                ));
            }
        }
        let best = &candidates[0].route;
        let methods: Vec<&str> = best.operations.keys().map(String::as_str).collect();
        Err(format!(
            "{method_uc} {path}: method {method_uc} is not documented for {} (documented: {})",
            best.template,
            methods.join(", ")
        ))
    }

    /// All templates matching `path`, most specific (literal-first) first.
    fn matches(&self, path: &str) -> Vec<Matched<'_>> {
        let segs = split_path(path);
        let mut found: Vec<(Vec<bool>, Matched<'_>)> = Vec::new();
        for route in &self.routes {
            if route.segments.len() != segs.len() {
                continue;
            }
            let mut params = Vec::new();
            let mut literal_at = Vec::with_capacity(segs.len());
            let ok = route.segments.iter().zip(&segs).all(|(t, s)| match t {
                Segment::Literal(l) => {
                    literal_at.push(true);
                    l == s
                }
                Segment::Param(name) => {
                    literal_at.push(false);
                    params.push((name.clone(), s.clone()));
                    !s.is_empty()
                }
            });
            if ok {
                found.push((literal_at, Matched { route, params }));
            }
        }
        // Compare left to right: at the first position where two templates differ,
        // the one with a literal there is more specific (true sorts after false, so
        // reverse).
        found.sort_by(|a, b| b.0.cmp(&a.0));
        found.into_iter().map(|(_, m)| m).collect()
    }
}

/// Splits a concrete request path into percent-decoded segments, dropping the
/// `/api/v10` prefix, any query string and a trailing slash.
fn split_path(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = match path.strip_prefix(API_PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let path = path.trim_end_matches('/');
    path.split('/')
        .skip(1) // the empty piece before the leading '/'
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Encodes a JSON pointer for use as a URI fragment: path templates put `{`, `}` and
/// such into pointers under `/paths`, which are not allowed raw in a fragment.
fn fragment_encode(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON-pointer escaping of one reference token.
fn escape_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// A Discord snowflake: the decimal string of a u64, no sign, no leading zeros.
fn is_snowflake(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.parse::<u64>().is_ok()
}

fn strip_snowflake_patterns(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("snowflake") {
                map.remove("pattern");
            }
            map.values_mut().for_each(strip_snowflake_patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_snowflake_patterns),
        _ => {}
    }
}

/// Follows local `$ref`s (`#/...`) from `pointer` until a non-reference object;
/// returns its pointer and value.
fn deref<'a>(doc: &'a Value, pointer: &str) -> Result<(String, &'a Value), String> {
    let mut pointer = pointer.to_owned();
    for _ in 0..32 {
        let v = doc
            .pointer(&pointer)
            .ok_or_else(|| format!("reference {pointer} does not resolve"))?;
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                pointer = r
                    .strip_prefix('#')
                    .ok_or_else(|| format!("{pointer}: non-local $ref {r} is not supported"))?
                    .to_owned();
            }
            None => return Ok((pointer, v)),
        }
    }
    Err(format!("{pointer}: $ref chain too long (a cycle?)"))
}

/// Canonical pointer of the schema at `pointer`: a schema that is only a `$ref` (plus
/// annotations) is replaced by its target, so operations sharing a component schema
/// share one compiled validator.
fn schema_pointer(doc: &Value, pointer: &str) -> Result<String, String> {
    let mut pointer = pointer.to_owned();
    for _ in 0..32 {
        let v = doc
            .pointer(&pointer)
            .ok_or_else(|| format!("schema {pointer} does not resolve"))?;
        let only_ref = v.as_object().is_some_and(|o| {
            o.contains_key("$ref")
                && o.keys()
                    .all(|k| matches!(k.as_str(), "$ref" | "description" | "title"))
        });
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) if only_ref && r.starts_with('#') => pointer = r[1..].to_owned(),
            _ => return Ok(pointer),
        }
    }
    Err(format!("schema {pointer}: $ref chain too long (a cycle?)"))
}

fn content_types(content: Option<&Value>) -> Vec<String> {
    content
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

fn json_schema_of(
    doc: &Value,
    base: &str,
    content: Option<&Value>,
) -> Result<Option<String>, String> {
    let has_json = content
        .and_then(|c| c.get("application/json"))
        .is_some_and(|j| j.get("schema").is_some());
    if !has_json {
        return Ok(None);
    }
    schema_pointer(doc, &format!("{base}/content/application~1json/schema")).map(Some)
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn build_routes(doc: &Value) -> Result<Vec<Route>, String> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("it has no \"paths\" object")?;
    let mut routes = Vec::with_capacity(paths.len());
    for (template, item) in paths {
        let item_ptr = format!("/paths/{}", escape_token(template));
        let segments = template
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        let shared_params = path_params(doc, &format!("{item_ptr}/parameters"))?;
        let mut operations = BTreeMap::new();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op_ptr = format!("{item_ptr}/{method}");
            let mut params = shared_params.clone();
            params.extend(path_params(doc, &format!("{op_ptr}/parameters"))?);

            let request = match op.get("requestBody") {
                None => RequestSpec::None,
                Some(_) => {
                    let (rb_ptr, rb) = deref(doc, &format!("{op_ptr}/requestBody"))?;
                    let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                    match json_schema_of(doc, &rb_ptr, rb.get("content"))? {
                        Some(schema) => RequestSpec::Json { schema, required },
                        None => RequestSpec::Other {
                            content_types: content_types(rb.get("content")),
                        },
                    }
                }
            };

            let mut responses = Vec::new();
            if let Some(rs) = op.get("responses").and_then(Value::as_object) {
                for key in rs.keys() {
                    let (r_ptr, r) =
                        deref(doc, &format!("{op_ptr}/responses/{}", escape_token(key)))?;
                    responses.push((
                        key.clone(),
                        ResponseSpec {
                            json_schema: json_schema_of(doc, &r_ptr, r.get("content"))?,
                            content_types: content_types(r.get("content")),
                        },
                    ));
                }
            }

            operations.insert(
                method.to_ascii_uppercase(),
                Operation {
                    id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    path_params: params,
                    request,
                    responses,
                },
            );
        }
        routes.push(Route {
            template: template.clone(),
            segments,
            operations,
        });
    }
    Ok(routes)
}

/// `in: path` parameters at `pointer` (a parameters array), name -> schema pointer.
fn path_params(doc: &Value, pointer: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let Some(list) = doc.pointer(pointer).and_then(Value::as_array) else {
        return Ok(out);
    };
    for i in 0..list.len() {
        let (p_ptr, p) = deref(doc, &format!("{pointer}/{i}"))?;
        if p.get("in").and_then(Value::as_str) != Some("path") || p.get("schema").is_none() {
            continue;
        }
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        out.insert(
            name.to_owned(),
            schema_pointer(doc, &format!("{p_ptr}/schema"))?,
        );
    }
    Ok(out)
}

/// The documented response for `status`: the exact code, else its class ("4XX"), else
/// "default".
fn response_for(responses: &[(String, ResponseSpec)], status: u16) -> Option<&ResponseSpec> {
    let exact = status.to_string();
    let class = format!("{}XX", status / 100);
    let find = |want: &str| {
        responses
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(want))
            .map(|(_, r)| r)
    };
    find(&exact)
        .or_else(|| find(&class))
        .or_else(|| find("default"))
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        return s.to_owned();
    }
    let cut: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
    format!("{cut}…")
}

fn location(err: &ValidationError<'_>) -> String {
    let p = err.instance_path().as_str();
    if p.is_empty() {
        "(root)".to_owned()
    } else {
        p.to_owned()
    }
}

/// Renders one validation error as "where: why" lines. `oneOf`/`anyOf` failures are
/// explained from their branches, since "not valid under any of the schemas" alone
/// says nothing about which field is wrong.
fn describe(err: &ValidationError<'_>, out: &mut Vec<String>) {
    let at = location(err);
    let (context, keyword) = match err.kind() {
        ValidationErrorKind::OneOfNotValid { context } => (context, "oneOf"),
        ValidationErrorKind::AnyOf { context } => (context, "anyOf"),
        _ => {
            out.push(format!("{at}: {}", shorten(&err.to_string())));
            return;
        }
    };
    let instance = shorten(&err.instance().to_string());
    let depth = err.instance_path().as_str().matches('/').count();

    // A branch "does not apply" when it fails on the value's kind (type at this
    // level) or on a discriminator (a const at this level or one below, like a
    // component's "type": 2). Such branches are noise; if exactly one branch applies,
    // its errors are the real explanation.
    let applies = |branch: &Vec<ValidationError<'static>>| {
        !branch.iter().any(|e| {
            let d = e.instance_path().as_str().matches('/').count();
            match e.kind() {
                ValidationErrorKind::Type { .. } => d == depth,
                ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. } => {
                    d <= depth + 1
                }
                _ => false,
            }
        })
    };
    let applicable: Vec<&Vec<ValidationError<'static>>> =
        context.iter().filter(|b| applies(b)).collect();
    if let [branch] = applicable.as_slice() {
        for e in branch.iter() {
            describe(e, out);
        }
        return;
    }

    let all_consts = !context.is_empty()
        && context.iter().all(|b| {
            b.iter()
                .all(|e| matches!(e.kind(), ValidationErrorKind::Constant { .. }))
        });
    if all_consts {
        // An enum spelled as oneOf of consts (Discord's style): name the values when
        // there are few enough to read.
        let allowed: Vec<String> = context
            .iter()
            .filter_map(|b| match b.first().map(ValidationError::kind) {
                Some(ValidationErrorKind::Constant { expected_value }) => {
                    Some(expected_value.to_string())
                }
                _ => None,
            })
            .collect();
        let listed = if allowed.len() <= 10 {
            format!(" ({})", allowed.join(", "))
        } else {
            String::new()
        };
        out.push(format!(
            "{at}: {instance} is not one of the {} values allowed by {keyword}{listed}",
            context.len()
        ));
        return;
    }
    let branches: Vec<String> = context
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let first = b
                .first()
                .map(|e| format!("{}: {e}", location(e)))
                .unwrap_or_default();
            format!("[{i}] {}", shorten(&first))
        })
        .collect();
    out.push(shorten(&format!(
        "{at}: {instance} matches none of the {keyword} alternatives: {}",
        branches.join("; ")
    )));
}
