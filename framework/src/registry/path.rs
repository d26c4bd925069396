//! Path patterns like `/v1/sessions/{id}/scan`: literal segments and `{name}` parameters.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: &'static str,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parses a pattern; patterns are program constants, so a malformed one is a bug.
    pub fn new(text: &'static str) -> Self {
        assert!(text.starts_with('/'), "path pattern must start with '/': {text}");
        let segments = text[1..]
            .split('/')
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name),
                None => Segment::Literal(s),
            })
            .collect();
        Self { text, segments }
    }

    pub fn as_str(&self) -> &'static str {
        self.text
    }

    /// Matches a concrete path, returning its parameters.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(lit) if *lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => {
                    params.insert((*name).to_owned(), part.to_owned());
                }
            }
        }
        Some(params)
    }

    /// Builds a concrete path from parameters.
    pub fn render(&self, params: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Literal(lit) => out.push_str(lit),
                Segment::Param(name) => out.push_str(params.get(*name).map(String::as_str).unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_extracted_and_literals_must_match() {
        let p = PathPattern::new("/v1/sessions/{id}/scan");
        let params = p.matches("/v1/sessions/s-1/scan").unwrap();
        assert_eq!(params["id"], "s-1");
        assert!(p.matches("/v1/sessions/s-1/qc").is_none());
        assert!(p.matches("/v1/sessions//scan").is_none());
        assert!(p.matches("/v1/sessions/s-1/scan/x").is_none());
        assert_eq!(p.render(&params), "/v1/sessions/s-1/scan");
    }
}
