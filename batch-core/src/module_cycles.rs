//! A test that no module of this crate imports, directly or through others, a module
//! that imports it back. A module is a file; an import is a `crate::…` or `super::…`
//! path anywhere in it (outside its unit tests), or a `use child::…` of a module it
//! declares, resolved to the deepest module file that the path names. A parent that
//! re-exports its children therefore imports them, and a child must import its
//! siblings by their own paths, never through the parent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn module_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            module_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source without its unit tests (by convention the last item of a file) and
/// without line comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path that follows `prefix` in `code`, with the members of a `{…}` group (one
/// level deep) as paths of their own.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let mut base = Vec::new();
        let mut s = rest;
        loop {
            let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
            if end == 0 {
                break;
            }
            base.push(s[..end].to_owned());
            s = &s[end..];
            match s.strip_prefix("::") {
                Some(next) => s = next,
                None => break,
            }
        }
        if let Some(group) = s.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for member in group.split(',') {
                let member: Vec<String> = member
                    .split("::")
                    .map(|p| p.trim().trim_start_matches('{').to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                paths.push(base.iter().cloned().chain(member).collect());
            }
        }
        paths.push(base);
    }
    paths
}

fn imports(
    code: &str,
    me: &Module,
    is_mod_file: bool,
    modules: &BTreeSet<Module>,
) -> BTreeSet<Module> {
    let parent: Module = if is_mod_file {
        me[..me.len().saturating_sub(1)].to_vec()
    } else {
        me[..me.len() - 1].to_vec()
    };
    let mut candidates: Vec<Module> = paths_after(code, "crate::");
    candidates.extend(paths_after(code, "super::").into_iter().map(|p| {
        let mut full = parent.clone();
        full.extend(p);
        full
    }));
    // `use child::…` of a module this one declares.
    for line in code.lines() {
        let line = line.trim_start();
        let Some(path) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("pub(crate) use "))
            .or_else(|| line.strip_prefix("use "))
        else {
            continue;
        };
        let first: String = path.chars().take_while(|c| is_ident(*c)).collect();
        let mut child = me.clone();
        child.push(first);
        if modules.contains(&child) {
            candidates.push(child);
        }
    }
    candidates
        .into_iter()
        .filter_map(|path| {
            (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|m| modules.contains(m))
        })
        .filter(|m| m != me)
        .collect()
}

fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|m| m == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    module_files(&root, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&root, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(&root, file);
        if me.is_empty() {
            continue; // the crate root re-exports everything
        }
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).unwrap();
        graph.insert(
            me.clone(),
            imports(&code(&text), &me, is_mod_file, &modules),
        );
    }
    assert!(
        graph.len() > 20,
        "the crate's modules were found: {}",
        graph.len()
    );
    assert!(
        graph[&vec!["step".to_owned(), "chunk".to_owned()]]
            .contains(&vec!["step".to_owned(), "boundary".to_owned()]),
        "imports are read"
    );
    if let Some(cycle) = find_cycle(&graph) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("an import cycle: {}", names.join(" -> "));
    }
}
