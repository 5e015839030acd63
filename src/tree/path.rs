//! Znode path rules, identical to ZooKeeper's `PathUtils.validatePath`.
//!
//! ZooKeeper validates Java UTF-16 code units; a character outside the Basic Multilingual
//! Plane is a surrogate pair there, which the `\ud800-\uf8ff` rule rejects, so it is
//! rejected here as well.

/// Why a path is not a valid znode path (the client sees BadArguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath(pub &'static str);

pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    if path.is_empty() {
        return Err(InvalidPath("path length must be > 0"));
    }
    if !path.starts_with('/') {
        return Err(InvalidPath("path must start with / character"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(InvalidPath("path must not end with / character"));
    }
    for component in path[1..].split('/') {
        if component.is_empty() {
            return Err(InvalidPath("empty node name"));
        }
        if component == "." || component == ".." {
            return Err(InvalidPath("relative paths not allowed"));
        }
        for character in component.chars() {
            let code = character as u32;
            let invalid = code == 0
                || (0x01..=0x1f).contains(&code)
                || (0x7f..=0x9f).contains(&code)
                || (0xd800..=0xf8ff).contains(&code)
                || (0xfff0..=0xffff).contains(&code)
                || code > 0xffff;
            if invalid {
                return Err(InvalidPath("invalid character"));
            }
        }
    }
    Ok(())
}

/// Splits `/a/b` into (`/a`, `b`) and `/a` into (`/`, `a`). The root has no parent.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    if path.len() <= 1 {
        return None;
    }
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

/// Joins a parent path and a child name.
/// The path of the names from a node up to (not including) the root: ["c", "b", "a"] is
/// "/a/b/c", and no names is "/".
pub fn from_leaf_up(names: &[&str]) -> String {
    if names.is_empty() {
        return "/".to_string();
    }
    let mut path = String::new();
    for name in names.iter().rev() {
        path.push('/');
        path.push_str(name);
    }
    path
}

pub fn join(parent: &str, name: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if parent != "/" {
        path.push('/');
    }
    path.push_str(name);
    path
}

/// The paths from `path` up to the root, `path` first (WatchManager's PathParentIterator).
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = split_parent(current).map(|(parent, _)| parent);
        Some(current)
    })
}

/// The ZooKeeper system subtree, which clients may read but not delete.
pub fn is_system_path(path: &str) -> bool {
    path == "/zookeeper" || path.starts_with("/zookeeper/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_rebuilt_from_its_names_leaf_first() {
        assert_eq!(from_leaf_up(&[]), "/");
        assert_eq!(from_leaf_up(&["a"]), "/a");
        assert_eq!(from_leaf_up(&["c", "b", "a"]), "/a/b/c");
    }

    #[test]
    fn path_rules_match_path_utils() {
        for valid in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/...",
            "/a/.b",
            "/zookeeper",
            "/é",
        ] {
            assert_eq!(validate_path(valid), Ok(()), "{valid}");
        }
        for invalid in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/😀",
        ] {
            assert!(validate_path(invalid).is_err(), "{invalid:?}");
        }
    }

    #[test]
    fn parents_and_joins() {
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        let chain: Vec<&str> = self_and_ancestors("/a/b/c").collect();
        assert_eq!(chain, vec!["/a/b/c", "/a/b", "/a", "/"]);
    }
}
