//! The layer rules of `docs/ARCHITECTURE.md`, checked by reading the sources under `server/src`
//! (and, for statics and `thread_local!`s, under `shared/src` and `client/src` too). Each broken
//! rule is reported as `file:line: rule`.
//!
//! - `domain/` imports no actix, no diesel and no other layer of the server;
//! - `db/` never names `ApiError`, `StatusCode` or actix;
//! - no `static` with interior mutability (directly or through a struct of this crate) and no
//!   `thread_local!` outside `#[cfg(test)]` code;
//! - HTTP statuses (`StatusCode::…`, `HttpResponse::<Status>`) are chosen only in `http/` and
//!   `testmode/`;
//! - no function is longer than [`MAX_FN_LINES`] lines, signature and closing brace included.
//!
//! The parsing is line-based: comments and the contents of string and char literals are blanked
//! first, and every item under `#[cfg(test)]` is skipped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// The longest function allowed, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 60;

/// The server's layers that `domain/` may not reach.
const OTHER_LAYERS: [&str; 6] = ["db", "http", "signing", "testmode", "cli", "app"];

/// Types whose values can change behind a shared reference.
const INTERIOR_MUTABILITY: [&str; 8] = [
    "Mutex",
    "RwLock",
    "Atomic",
    "Cell",
    "RefCell",
    "OnceCell",
    "UnsafeCell",
    "Condvar",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server/src/{}:{}: {}", self.file, self.line, self.rule)
    }
}

/// One source file: its path under `server/src`, its code lines (comments and literal contents
/// blanked) and which of them are test code.
struct Source {
    path: String,
    code: Vec<String>,
    test: Vec<bool>,
}

impl Source {
    fn new(path: &str, text: &str) -> Source {
        let code = blank_comments_and_literals(text);
        let test = test_lines(&code);
        Source {
            path: path.to_owned(),
            code,
            test,
        }
    }

    /// The first folder of the path (`domain`, `db`, ...), or the file stem (`app`, `main`).
    fn layer(&self) -> &str {
        let first = self.path.split('/').next().unwrap_or("");
        first.strip_suffix(".rs").unwrap_or(first)
    }

    /// `(line number, code)` of the lines that are not test code.
    fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.code
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.test[*i])
            .map(|(i, l)| (i + 1, l.as_str()))
    }

    fn violation(&self, line: usize, rule: impl Into<String>) -> Violation {
        Violation {
            file: self.path.clone(),
            line,
            rule: rule.into(),
        }
    }
}

/// Replaces comments by spaces and the contents of string and char literals by spaces (keeping
/// the quotes), so that braces, keywords and paths are only ever code.
fn blank_comments_and_literals(text: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Block(u32),
        Str,
        RawStr(usize),
    }
    let mut state = State::Code;
    let mut out = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut o = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match state {
                State::Block(depth) => {
                    if c == '*' && next == Some('/') {
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        o.push_str("  ");
                        i += 2;
                        continue;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(depth + 1);
                        o.push_str("  ");
                        i += 2;
                        continue;
                    }
                    o.push(' ');
                }
                State::Str => {
                    if c == '\\' {
                        o.push_str("  ");
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        state = State::Code;
                        o.push('"');
                    } else {
                        o.push(' ');
                    }
                }
                State::RawStr(hashes) => {
                    if c == '"'
                        && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes
                    {
                        state = State::Code;
                        o.push('"');
                        o.push_str(&"#".repeat(hashes));
                        i += 1 + hashes;
                        continue;
                    }
                    o.push(' ');
                }
                State::Code => {
                    if c == '/' && next == Some('/') {
                        break;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(1);
                        o.push_str("  ");
                        i += 2;
                        continue;
                    }
                    let ident_before =
                        i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
                    if c == 'r' && !ident_before && matches!(next, Some('"') | Some('#')) {
                        let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                        if chars.get(i + 1 + hashes) == Some(&'"') {
                            state = State::RawStr(hashes);
                            o.push('r');
                            o.push_str(&"#".repeat(hashes));
                            o.push('"');
                            i += 2 + hashes;
                            continue;
                        }
                    }
                    if c == '"' {
                        state = State::Str;
                        o.push('"');
                    } else if c == '\'' {
                        // a char literal ('x', '\n', '\u{..}'), or a lifetime ('a)
                        let end = if next == Some('\\') {
                            chars[i + 2..]
                                .iter()
                                .position(|&q| q == '\'')
                                .map(|p| i + 2 + p)
                        } else if chars.get(i + 2) == Some(&'\'') {
                            Some(i + 2)
                        } else {
                            None
                        };
                        match end {
                            Some(e) => {
                                o.push('\'');
                                o.push_str(&" ".repeat(e - i - 1));
                                o.push('\'');
                                i = e + 1;
                                continue;
                            }
                            None => o.push('\''),
                        }
                    } else {
                        o.push(c);
                    }
                }
            }
            i += 1;
        }
        out.push(o);
    }
    out
}

/// Marks the lines of every item under `#[cfg(test)]` (attribute included).
fn test_lines(code: &[String]) -> Vec<bool> {
    let mut test = vec![false; code.len()];
    let mut i = 0;
    while i < code.len() {
        if !code[i].trim_start().starts_with("#[cfg(test)]") {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0i32;
        let mut opened = false;
        let rest = code[i].trim_start().trim_start_matches("#[cfg(test)]");
        let mut text = rest.to_owned();
        loop {
            for ch in text.chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let t = text.trim_end();
            let done = (opened && depth <= 0) || (!opened && t.ends_with(';'));
            if done || i + 1 >= code.len() {
                break;
            }
            i += 1;
            text = code[i].clone();
        }
        for t in &mut test[start..=i] {
            *t = true;
        }
        i += 1;
    }
    test
}

/// The identifiers of a line, in order.
fn idents(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

fn is_actix(ident: &str) -> bool {
    ident == "actix" || ident.starts_with("actix_")
}

fn is_diesel(ident: &str) -> bool {
    ident == "diesel" || ident.starts_with("diesel_")
}

/// The server modules a piece of code names through `crate::` (`crate::db::x` and
/// `crate::{db, http::y}` both count), with the line each is named on.
fn crate_modules(lines: &[(usize, &str)]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    // a grouped `use crate::{...}` can span lines: read it whole
    let joined: Vec<(usize, char)> = lines
        .iter()
        .flat_map(|(n, l)| l.chars().chain(std::iter::once(' ')).map(move |c| (*n, c)))
        .collect();
    let text: String = joined.iter().map(|(_, c)| c).collect();
    let chars: Vec<char> = text.chars().collect();
    let mut from = 0;
    while let Some(pos) = text[from..].find("crate::") {
        let at = from + pos;
        let before = text[..at].chars().next_back();
        from = at + "crate::".len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `glpi_network_crate::`
        }
        let line = joined[text[..at].chars().count()].0;
        let start = text[..from].chars().count();
        if chars.get(start) == Some(&'{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut names = Vec::new();
            for &c in &chars[start..] {
                match c {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            continue;
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            names.push(std::mem::take(&mut item));
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        names.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth >= 1 {
                    item.push(c);
                }
            }
            for name in names {
                if let Some(first) = idents(&name).first() {
                    found.push((line, (*first).to_owned()));
                }
            }
        } else {
            let name: String = chars[start..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            if !name.is_empty() {
                found.push((line, name));
            }
        }
    }
    found
}

/// `domain/` imports no actix, no diesel, no other layer.
fn check_domain(src: &Source, out: &mut Vec<Violation>) {
    if src.layer() != "domain" {
        return;
    }
    let lines: Vec<(usize, &str)> = src.lines().collect();
    for (n, line) in &lines {
        for id in idents(line) {
            if is_actix(id) || is_diesel(id) {
                out.push(src.violation(
                    *n,
                    format!("domain names `{id}`: the rules know no framework"),
                ));
            }
        }
    }
    for (n, module) in crate_modules(&lines) {
        if OTHER_LAYERS.contains(&module.as_str()) {
            out.push(src.violation(
                n,
                format!("domain imports `crate::{module}`: the rules import no other layer"),
            ));
        }
    }
}

/// `db/` never names `ApiError`, `StatusCode` or actix.
fn check_db(src: &Source, out: &mut Vec<Violation>) {
    if src.layer() != "db" {
        return;
    }
    for (n, line) in src.lines() {
        for id in idents(line) {
            if id == "ApiError" || id == "StatusCode" || is_actix(id) {
                out.push(src.violation(
                    n,
                    format!("db names `{id}`: storage answers with db::Error and domain types"),
                ));
            }
        }
    }
}

/// Statuses are chosen in `http/` and `testmode/` only.
fn check_statuses(src: &Source, out: &mut Vec<Violation>) {
    if matches!(src.layer(), "http" | "testmode") {
        return;
    }
    for (n, line) in src.lines() {
        let chosen = line.match_indices("StatusCode::").next().is_some()
            || line.match_indices("HttpResponse::").any(|(i, m)| {
                let rest = &line[i + m.len()..];
                rest.starts_with(|c: char| c.is_ascii_uppercase()) || rest.starts_with("build(")
            });
        if chosen {
            out.push(src.violation(n, "an HTTP status chosen outside http/ and testmode/"));
        }
    }
}

/// Struct and enum bodies of the crate by name, to see through `static X: Wrapper`.
fn type_bodies(sources: &[Source]) -> HashMap<String, String> {
    let mut bodies = HashMap::new();
    for src in sources {
        let lines: Vec<(usize, &str)> = src.lines().collect();
        for (k, (_, line)) in lines.iter().enumerate() {
            let ids = idents(line);
            let Some(p) = ids.iter().position(|w| *w == "struct" || *w == "enum") else {
                continue;
            };
            let Some(name) = ids.get(p + 1) else { continue };
            let mut body = String::new();
            let mut depth = 0i32;
            for (_, l) in &lines[k..] {
                body.push_str(l);
                body.push(' ');
                depth +=
                    l.matches(['{', '(']).count() as i32 - l.matches(['}', ')']).count() as i32;
                if depth <= 0 && (l.contains(';') || l.contains('}')) {
                    break;
                }
            }
            bodies.insert((*name).to_owned(), body);
        }
    }
    bodies
}

/// Whether a type, or a struct of this crate it names, holds interior mutability.
fn mutable_type(ty: &str, bodies: &HashMap<String, String>, seen: &mut HashSet<String>) -> bool {
    for id in idents(ty) {
        if INTERIOR_MUTABILITY.iter().any(|m| id.starts_with(m)) {
            return true;
        }
        if let Some(body) = bodies.get(id)
            && seen.insert(id.to_owned())
            && mutable_type(body, bodies, seen)
        {
            return true;
        }
    }
    false
}

/// No mutable `static`, no `thread_local!`, outside tests.
fn check_statics(src: &Source, bodies: &HashMap<String, String>, out: &mut Vec<Violation>) {
    let lines: Vec<(usize, &str)> = src.lines().collect();
    for (k, (n, line)) in lines.iter().enumerate() {
        if line.contains("thread_local!") {
            out.push(src.violation(*n, "a thread_local!: state travels in values app.rs builds"));
            continue;
        }
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub ")
            .or_else(|| {
                t.strip_prefix("pub(")
                    .and_then(|r| r.split_once(") ").map(|(_, r)| r))
            })
            .unwrap_or(t);
        let Some(decl) = t.strip_prefix("static ") else {
            continue;
        };
        // the type runs from the first `:` to the `=`, possibly over several lines
        let mut stmt = decl.to_owned();
        for (_, l) in &lines[k + 1..] {
            if stmt.contains('=') || stmt.contains(';') {
                break;
            }
            stmt.push_str(l);
        }
        let ty = stmt
            .split_once(':')
            .map(|(_, r)| r.split(['=', ';']).next().unwrap_or(""))
            .unwrap_or("");
        if decl.starts_with("mut ") || mutable_type(ty, bodies, &mut HashSet::new()) {
            out.push(src.violation(
                *n,
                format!(
                    "a static with interior mutability ({}): state travels in values app.rs builds",
                    ty.trim()
                ),
            ));
        }
    }
}

/// No function longer than [`MAX_FN_LINES`] lines.
fn check_fn_lengths(src: &Source, out: &mut Vec<Violation>) {
    let lines: Vec<(usize, &str)> = src.lines().collect();
    for (k, (n, line)) in lines.iter().enumerate() {
        let ids = idents(line);
        let Some(p) = ids.iter().position(|w| *w == "fn") else {
            continue;
        };
        let Some(name) = ids.get(p + 1) else { continue };
        // `fn(` is a pointer type, not an item
        if line
            .split("fn")
            .nth(1)
            .is_some_and(|r| r.trim_start().starts_with('('))
        {
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        let mut end = None;
        'scan: for (m, l) in &lines[k..] {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened => break 'scan, // a declaration without a body
                    _ => {}
                }
                if opened && depth == 0 {
                    end = Some(*m);
                    break 'scan;
                }
            }
        }
        if let Some(end) = end {
            let len = end - n + 1;
            if len > MAX_FN_LINES {
                out.push(src.violation(
                    *n,
                    format!("fn {name} is {len} lines long (at most {MAX_FN_LINES})"),
                ));
            }
        }
    }
}

/// Every rule, on every source.
fn check(sources: &[Source]) -> Vec<Violation> {
    let bodies = type_bodies(sources);
    let mut out = Vec::new();
    for src in sources {
        check_domain(src, &mut out);
        check_db(src, &mut out);
        check_statuses(src, &mut out);
        check_statics(src, &bodies, &mut out);
        check_fn_lengths(src, &mut out);
    }
    out
}

fn read_tree(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            out.push(Source::new(&rel, &text));
        }
    }
}

#[test]
fn the_server_sources_follow_the_layer_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    read_tree(&root, &root, &mut sources);
    assert!(
        sources.len() > 20,
        "the sources were not found under {}",
        root.display()
    );
    let violations = check(&sources);
    let report: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    assert!(
        violations.is_empty(),
        "{} violation(s) of the layer rules (docs/ARCHITECTURE.md):\n{}",
        violations.len(),
        report.join("\n")
    );
}

#[test]
fn the_other_crates_hold_no_mutable_static_and_no_thread_local() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut report = Vec::new();
    for krate in ["shared", "client"] {
        let root = workspace.join(krate).join("src");
        let mut sources = Vec::new();
        read_tree(&root, &root, &mut sources);
        assert!(!sources.is_empty(), "no sources under {}", root.display());
        let bodies = type_bodies(&sources);
        let mut out = Vec::new();
        for src in &sources {
            check_statics(src, &bodies, &mut out);
        }
        report.extend(
            out.iter()
                .map(|v| format!("{krate}/src/{}:{}: {}", v.file, v.line, v.rule)),
        );
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

// The checker itself: each rule catches a violating snippet and passes a clean one.

fn check_one(path: &str, text: &str) -> Vec<(usize, String)> {
    check(&[Source::new(path, text)])
        .into_iter()
        .map(|v| (v.line, v.rule))
        .collect()
}

#[test]
fn domain_importing_a_framework_or_a_layer_is_caught() {
    let v = check_one(
        "domain/key.rs",
        "//! Keys.\nuse chrono::NaiveDateTime;\nuse diesel::prelude::*;\nuse crate::{domain::clock,\n    db::Error};\nfn f() { crate::http::x(); }\n",
    );
    let lines: Vec<usize> = v.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![3, 4, 6], "{v:?}");
    assert!(v[0].1.contains("diesel"));
    assert!(v[1].1.contains("crate::db"));
    assert!(v[2].1.contains("crate::http"));
    assert!(check_one("domain/key.rs", "use crate::domain::clock::Clock;\nuse serde::Serialize;\n// actix is not named here\nconst S: &str = \"diesel\";\n").is_empty());
    // the same imports are fine outside the domain
    assert!(
        check_one(
            "db/keys.rs",
            "use diesel::prelude::*;\nuse crate::domain::key::Key;\n"
        )
        .is_empty()
    );
}

#[test]
fn db_naming_http_is_caught() {
    let v = check_one(
        "db/keys.rs",
        "use crate::http::error::ApiError;\nuse actix_web::web;\nfn f() -> u32 { 1 }\n",
    );
    assert_eq!(
        v.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![1, 2],
        "{v:?}"
    );
}

#[test]
fn mutable_statics_and_thread_locals_are_caught_outside_tests() {
    let src = "use std::sync::atomic::AtomicU64;\n\
        pub struct Counters { hits: [AtomicU64; 4] }\n\
        pub static COUNTERS: Counters = Counters::new();\n\
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());\n\
        pub(crate) static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(Vec::new);\n\
        static CACHE: OnceLock<RwLock<u8>> = OnceLock::new();\n\
        thread_local! {\n    static Q: RefCell<u8> = RefCell::new(0);\n}\n\
        fn f(x: &'static str) -> &'static str { x }\n\
        #[cfg(test)]\nmod tests {\n    static T: Mutex<u8> = Mutex::new(0);\n    thread_local!(static U: u8 = 0);\n}\n";
    let v = check_one("db/keycache.rs", src);
    assert_eq!(
        v.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![3, 4, 6, 7, 8],
        "{v:?}"
    );
}

#[test]
fn statuses_chosen_outside_http_are_caught() {
    let src = "fn f() -> ApiError { ApiError::new(StatusCode::CONFLICT, c, m) }\nfn g() { HttpResponse::Ok().finish(); HttpResponse::build(s); }\nfn h(r: HttpResponse) {}\n";
    let v = check_one("db/registrations.rs", src);
    assert!(
        v.iter().any(|(l, r)| *l == 1 && r.contains("HTTP status")),
        "{v:?}"
    );
    assert!(
        v.iter().any(|(l, r)| *l == 2 && r.contains("HTTP status")),
        "{v:?}"
    );
    assert!(!v.iter().any(|(l, _)| *l == 3), "{v:?}");
    assert!(check_one("app.rs", "fn h(r: HttpResponse) -> u8 { 1 }\n").is_empty());
    assert!(check_one("http/error.rs", src).is_empty());
    assert!(check_one("testmode/routes.rs", src).is_empty());
}

#[test]
fn long_functions_are_caught_and_braces_in_literals_do_not_count() {
    let body = |n: usize| "    let _ = 1;\n".repeat(n);
    let short = format!("fn short() {{\n{}}}\n", body(58));
    assert!(
        check_one("cli/mod.rs", &short).is_empty(),
        "60 lines is the limit"
    );
    let long = format!(
        "fn long(\n    a: u8,\n) {{\n    let s = \"}}}}\"; let c = '}}'; // }}\n{}}}\nfn after() {{}}\n",
        body(57)
    );
    let v = check_one("cli/mod.rs", &long);
    assert_eq!(
        v,
        vec![(1, "fn long is 62 lines long (at most 60)".to_owned())]
    );
    let raw = format!("fn raw() {{\n    let s = r#\"}}\"#;\n{}}}\n", body(58));
    assert_eq!(
        check_one("app.rs", &raw).len(),
        1,
        "a raw string's brace is no brace"
    );
    let tests = format!(
        "#[cfg(test)]\nmod tests {{\n    #[test]\n    fn long() {{\n{}    }}\n}}\n",
        body(80)
    );
    assert!(
        check_one("domain/key.rs", &tests).is_empty(),
        "test code is skipped"
    );
    assert!(
        check_one(
            "app.rs",
            "trait T {\n    fn decl(&self);\n}\ntype F = fn(u8) -> u8;\n"
        )
        .is_empty()
    );
}
