//! Reading a `207 Multi-Status` body (RFC 4918 §13, §14.16) into one entry per resource.
//!
//! Written for what servers really send: any prefix (or none) for `DAV:`, `propstat` before
//! or after its `prop`, hrefs as absolute URLs, paths or relative references, in any
//! percent-encoding, several hrefs in one status-only response.

use davit_proto::xml::{Element, XmlLimits, parse_document};
use davit_proto::{DAV_NS, PropName};
use percent_encoding::percent_decode_str;

use crate::ClientError;

/// A parsed multistatus: one [`MultistatusResponse`] per resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multistatus {
    /// One entry per resource (per href).
    pub responses: Vec<MultistatusResponse>,
    /// The top-level `responsedescription`, if any.
    pub description: Option<String>,
}

/// What the server said about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultistatusResponse {
    /// The href as sent.
    pub href: String,
    /// The href's path, percent-decoded (a collection's ends in `/`).
    pub path: String,
    /// The status of the whole resource, for status-only responses.
    pub status: Option<u16>,
    /// The property groups, for property responses.
    pub propstats: Vec<Propstat>,
    /// Local names of the `DAV:error` conditions (e.g. `lock-token-submitted`).
    pub conditions: Vec<String>,
    /// The `responsedescription`, if any.
    pub description: Option<String>,
}

/// A group of properties sharing a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propstat {
    /// The status of these properties.
    pub status: u16,
    /// The properties.
    pub props: Vec<Prop>,
    /// Local names of the `DAV:error` conditions.
    pub conditions: Vec<String>,
    /// The `responsedescription`, if any.
    pub description: Option<String>,
}

/// One property as returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// Its name.
    pub name: PropName,
    /// The property element, with its value as children.
    pub element: Element,
}

impl Prop {
    /// The text of the value.
    pub fn text(&self) -> String {
        self.element.text()
    }
}

/// One thing that went wrong in a multistatus: a resource, or one property of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Decoded path of the resource.
    pub path: String,
    /// The property that failed, for property failures.
    pub property: Option<PropName>,
    /// The status.
    pub status: u16,
    /// The condition, if the server gave one.
    pub condition: Option<String>,
    /// The server's description, if any.
    pub description: Option<String>,
}

/// True for 2xx.
pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

impl Multistatus {
    /// As [`Multistatus::parse`], for the answer to a request for `request_path` (as sent,
    /// percent-encoded): hrefs relative to it (RFC 4918 §8.3, resolved as RFC 3986 §5.2
    /// says) get the paths they stand for.
    ///
    /// # Errors
    /// As [`Multistatus::parse`].
    pub fn parse_at(body: &[u8], request_path: &str) -> Result<Multistatus, ClientError> {
        let mut ms = Self::parse(body)?;
        for r in &mut ms.responses {
            if let Some(resolved) = resolve(request_path, &r.href) {
                r.path = href_path(&resolved);
            }
        }
        Ok(ms)
    }

    /// Parses a body. A relative href is taken as a path as it stands; [`Multistatus::parse_at`]
    /// resolves it.
    ///
    /// # Errors
    /// [`ClientError`] (protocol) if the body is not a `DAV:multistatus`.
    pub fn parse(body: &[u8]) -> Result<Multistatus, ClientError> {
        // Responses can be large; nesting stays shallow.
        let limits = XmlLimits {
            max_depth: 64,
            max_elements: usize::MAX,
        };
        let root = parse_document(body, limits)
            .map_err(|e| ClientError::protocol(format!("the multistatus body is not XML: {e}")))?;
        if !root.is(DAV_NS, "multistatus") {
            return Err(ClientError::protocol(format!(
                "expected DAV:multistatus, got {{{}}}{}",
                root.namespace, root.local
            )));
        }
        let mut responses = Vec::new();
        let mut description = None;
        for child in dav_children(&root) {
            match child.local.as_str() {
                "response" => responses.extend(parse_response(child)?),
                "responsedescription" => description = Some(child.text()),
                _ => {}
            }
        }
        Ok(Multistatus {
            responses,
            description,
        })
    }

    /// Everything that failed: resources with a non-2xx status, and properties with a
    /// non-2xx status other than 404 (which only says a requested property is absent).
    pub fn failures(&self) -> Vec<Failure> {
        let mut out = Vec::new();
        for r in &self.responses {
            if let Some(status) = r.status.filter(|s| !is_success(*s)) {
                out.push(Failure {
                    path: r.path.clone(),
                    property: None,
                    status,
                    condition: r.conditions.first().cloned(),
                    description: r.description.clone(),
                });
            }
            for ps in r
                .propstats
                .iter()
                .filter(|ps| !is_success(ps.status) && ps.status != 404)
            {
                for p in &ps.props {
                    out.push(Failure {
                        path: r.path.clone(),
                        property: Some(p.name.clone()),
                        status: ps.status,
                        condition: ps.conditions.first().or(r.conditions.first()).cloned(),
                        description: ps.description.clone().or_else(|| r.description.clone()),
                    });
                }
            }
        }
        out
    }

    /// True when nothing failed.
    pub fn is_complete_success(&self) -> bool {
        self.failures().is_empty()
    }

    /// True when there were entries and every one of them failed.
    pub fn all_failed(&self) -> bool {
        let entries: usize = self
            .responses
            .iter()
            .map(|r| {
                if r.status.is_some() {
                    1
                } else {
                    r.propstats.iter().map(|p| p.props.len().max(1)).sum()
                }
            })
            .sum();
        entries > 0 && self.failures().len() >= entries
    }

    /// The response for a decoded path (a trailing `/` is ignored).
    pub fn get(&self, path: &str) -> Option<&MultistatusResponse> {
        let want = path.trim_end_matches('/');
        self.responses
            .iter()
            .find(|r| r.path.trim_end_matches('/') == want)
    }
}

impl MultistatusResponse {
    /// A property found with a 2xx status.
    pub fn prop(&self, namespace: &str, local: &str) -> Option<&Prop> {
        self.propstats
            .iter()
            .filter(|ps| is_success(ps.status))
            .flat_map(|ps| &ps.props)
            .find(|p| p.name.namespace == namespace && p.name.local == local)
    }

    /// The status a property was reported with.
    pub fn prop_status(&self, namespace: &str, local: &str) -> Option<u16> {
        self.propstats
            .iter()
            .find(|ps| {
                ps.props
                    .iter()
                    .any(|p| p.name.namespace == namespace && p.name.local == local)
            })
            .map(|ps| ps.status)
    }

    /// Whether `resourcetype` says collection (or, without it, the href ends in `/`).
    pub fn is_collection(&self) -> bool {
        match self.prop(DAV_NS, "resourcetype") {
            Some(p) => p.element.elements().any(|e| e.is(DAV_NS, "collection")),
            None => self.path.ends_with('/'),
        }
    }

    /// `getcontentlength`.
    pub fn content_length(&self) -> Option<u64> {
        self.prop(DAV_NS, "getcontentlength")?
            .text()
            .trim()
            .parse()
            .ok()
    }

    /// `getetag`.
    pub fn etag(&self) -> Option<String> {
        Some(self.prop(DAV_NS, "getetag")?.text().trim().to_owned())
    }

    /// `getlastmodified`.
    pub fn last_modified(&self) -> Option<std::time::SystemTime> {
        httpdate::parse_http_date(self.prop(DAV_NS, "getlastmodified")?.text().trim()).ok()
    }

    /// `getcontenttype`.
    pub fn content_type(&self) -> Option<String> {
        Some(
            self.prop(DAV_NS, "getcontenttype")?
                .text()
                .trim()
                .to_owned(),
        )
    }
}

fn dav_children(e: &Element) -> impl Iterator<Item = &Element> {
    e.elements().filter(|c| c.namespace == DAV_NS)
}

/// `HTTP/1.1 423 Locked` → 423. Lenient: the reason may be missing.
fn status_code(line: &str) -> Result<u16, ClientError> {
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| ClientError::protocol(format!("invalid status line `{}`", line.trim())))
}

/// The path part of an href (absolute URL or path), percent-decoded.
pub(crate) fn href_path(href: &str) -> String {
    let href = href.trim();
    let path = match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => href,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    percent_decode_str(path).decode_utf8_lossy().into_owned()
}

/// `href` resolved against the path `base` when it is a relative path reference; `None`
/// for an absolute URL or path.
fn resolve(base: &str, href: &str) -> Option<String> {
    let href = href.trim();
    if href.starts_with('/') || href.contains("://") {
        return None;
    }
    if href.is_empty() {
        return Some(base.to_owned());
    }
    let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
    let joined = format!("{dir}{href}");
    let (path, rest) = joined
        .find(['?', '#'])
        .map_or((joined.as_str(), ""), |i| joined.split_at(i));
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let folder = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("/{}", segments.join("/"));
    if folder && !segments.is_empty() {
        out.push('/');
    }
    out.push_str(rest);
    Some(out)
}

fn conditions(e: &Element) -> Vec<String> {
    dav_children(e)
        .filter(|c| c.local == "error")
        .flat_map(|err| err.elements().map(|c| c.local.clone()))
        .collect()
}

fn parse_response(r: &Element) -> Result<Vec<MultistatusResponse>, ClientError> {
    let hrefs: Vec<String> = dav_children(r)
        .filter(|c| c.local == "href")
        .map(|c| c.text().trim().to_owned())
        .collect();
    if hrefs.is_empty() {
        return Err(ClientError::protocol(
            "a multistatus response without href".to_owned(),
        ));
    }
    let mut status = None;
    let mut propstats = Vec::new();
    let mut description = None;
    for c in dav_children(r) {
        match c.local.as_str() {
            "status" => status = Some(status_code(&c.text())?),
            "responsedescription" => description = Some(c.text()),
            "propstat" => {
                let mut ps_status = None;
                let mut props = Vec::new();
                let mut ps_description = None;
                for p in dav_children(c) {
                    match p.local.as_str() {
                        "status" => ps_status = Some(status_code(&p.text())?),
                        "prop" => props.extend(p.elements().map(|e| Prop {
                            name: PropName::of(e),
                            element: e.clone(),
                        })),
                        "responsedescription" => ps_description = Some(p.text()),
                        _ => {}
                    }
                }
                propstats.push(Propstat {
                    status: ps_status.ok_or_else(|| {
                        ClientError::protocol("a propstat without status".to_owned())
                    })?,
                    props,
                    conditions: conditions(c),
                    description: ps_description,
                });
            }
            _ => {}
        }
    }
    let conditions = conditions(r);
    Ok(hrefs
        .into_iter()
        .map(|href| MultistatusResponse {
            path: href_path(&href),
            href,
            status,
            propstats: propstats.clone(),
            conditions: conditions.clone(),
            description: description.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_hrefs_resolve_against_the_request() {
        for (base, href, want) in [
            ("/d/", "a.txt", Some("/d/a.txt")),
            ("/d/", "sub/", Some("/d/sub/")),
            ("/d/", "./b%20c", Some("/d/b%20c")),
            ("/d/", "../x", Some("/x")),
            ("/d/", "../../../x", Some("/x")),
            ("/d/", "..", Some("/")),
            ("/d/file", "a.txt", Some("/d/a.txt")),
            ("/d/", "", Some("/d/")),
            ("/d/", "a?q=1", Some("/d/a?q=1")),
            ("/d/", "/abs", None),
            ("/d/", "http://h/abs", None),
        ] {
            assert_eq!(resolve(base, href).as_deref(), want, "{base} + {href}");
        }
        let body = br#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>a%20b.txt</D:href><D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>"#;
        let ms = Multistatus::parse_at(body, "/d%C3%A9/").unwrap();
        assert_eq!(ms.responses[0].path, "/d\u{e9}/a b.txt");
        assert_eq!(ms.responses[0].href, "a%20b.txt");
    }

    #[test]
    fn href_paths() {
        assert_eq!(href_path("http://h:8080/a%20b/"), "/a b/");
        assert_eq!(href_path("https://h"), "/");
        assert_eq!(href_path("/x%c3%a9"), "/xé");
        assert_eq!(href_path(" /y?q=1 "), "/y");
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 207 Multi-Status").unwrap(), 207);
        assert_eq!(status_code("HTTP/1.1 200").unwrap(), 200);
        assert!(status_code("garbage").is_err());
    }
}
